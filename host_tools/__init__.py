"""Host-side tools: the `seismote` CLI, replay and waveform readers."""
