"""The node's main loop: boot, sample, detect, log, report, and keep going when hardware fails.

    boot: validate config -> open event log (recovers a torn record) -> watchdog -> detector
          (the model where the firmware has TFLite Micro, else the rule) -> sensor
    step: feed watchdog -> poll sensor FIFO -> drain samples through the pipeline
          -> log detections and events -> heartbeat when due -> flush telemetry
A sensor that is missing, answers wrongly or stops delivering samples is re-initialised with
exponential backoff (1 s doubling to 60 s); every fault and recovery is logged, and heartbeats keep
going meanwhile, so a technician sees the fault instead of a silent node.
"""

from . import config, eventlog, pipeline, telemetry
from .compat import const, ticks_diff
from .errors import SensorError
from .sampler import Sampler

_WDT_MS = const(30000)
_BACKOFF_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_STALL_MS = const(2000)  # no sample for this long while running = a sensor fault


class Node:
    def __init__(self, board, cfg_doc, send=None):
        self.board = board
        self.cfg_doc = cfg_doc
        self.send = send  # send(bytes) for telemetry; raises OSError while offline
        self.sensor = None
        self.sampler = None
        self.pipe = None
        self.stats = {"triggers": 0, "rejected": 0, "detections": 0, "faults": 0, "reinits": 0}

    # --- boot -----------------------------------------------------------------------------
    def boot(self):
        cfg = config.validate(self.cfg_doc)
        self.cfg = cfg
        self.node_id = cfg["node_id"]
        b = self.board
        self.log = eventlog.EventLog(b.data_dir(), cfg["log"]["segment_bytes"], cfg["log"]["max_segments"])
        self.outbox = telemetry.Outbox(cfg["telemetry"]["buffer"])
        self.wdt = b.watchdog(_WDT_MS)
        self.backoff = _BACKOFF_MS
        self.retry_at = b.ticks_ms()
        self.last_data = b.ticks_ms()
        self.hb_every = int(cfg["telemetry"]["heartbeat_s"] * 1000)
        self.hb_at = b.ticks_ms() - self.hb_every  # first heartbeat on the first step: "I am up"
        self.hb_samples = 0
        self.last_detection = None
        self.overflows_logged = 0
        self.golden_checked = 0
        self.detector = self._load_detector()
        boot = {"reset_cause": b.reset_cause(), "board": b.name, "recovered_bytes": self.log.recovered_bytes,
                "detector": "model" if self.detector is not None else "rule"}
        if self.detector is not None:
            boot["golden_vectors"] = self.golden_checked  # 0: no golden file beside the model, unchecked
        self._status("boot", boot)
        self.start_sensor()

    def _load_detector(self):
        """The int8 model in TFLite Micro if the firmware has it and the model loads, else None (the rule).

        The model's settings come from model.json beside the .tflite (uploaded together), and the
        export's golden vectors beside it check this image's kernels (detector.verify). A model
        that fails to load or to reproduce them is logged and the node runs on with the rule: a
        detection by the rule is worth more than no node, or than one whose scores mean nothing.
        """
        backend = self.board.detector_backend()
        if backend is None:
            return None
        path = self.cfg["detector"]["model"]
        try:
            import json

            from . import detector

            stem = path.rsplit(".", 1)[0]
            with open(stem + ".json") as f:
                meta = json.load(f)
            det = detector.load(backend, meta, path, self.cfg["sensor"]["type"])
            self.golden_checked = detector.verify(det, stem + detector.GOLDEN_SUFFIX)
            return det
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            self._status("detector_unavailable", {"model": path, "error": str(e)})
            return None

    def _status(self, what, info):
        info["kind"] = what
        self.log.append_json(eventlog.T_STATUS, info, self.board.unix_time() or 0)

    def start_sensor(self):
        from .sensors import open_sensor

        b = self.board
        s = self.cfg["sensor"]
        try:
            bus, cs = b.sensor_bus()
            sensor = open_sensor(s["type"], bus, cs, b.sensor_address(), s["odr_hz"], s["range_g"])
        except (SensorError, OSError) as e:
            self._fault(e)
            return False
        if self.pipe is None:
            self.pipe = pipeline.Pipeline(self.cfg, sensor.counts_per_g, sensor.odr_hz, self.detector)
        else:
            self.pipe.reset()  # the signal history is no longer continuous
        if self.sensor is not None or self.stats["faults"]:
            self.stats["reinits"] += 1
            self._status("sensor_reinit", {"sensor": s["type"]})
        self.sensor = sensor
        self.sampler = Sampler(sensor)
        self.backoff = _BACKOFF_MS
        self.last_data = b.ticks_ms()
        return True

    def _log_overflows(self):
        s = self.sensor
        if s is not None and s.overflows != self.overflows_logged:
            # Lost samples go to the log too, not only to the (lossy) telemetry.
            self._status("fifo_overflow", {"overflows": s.overflows, "lost": s.lost})
            self.overflows_logged = s.overflows

    def _fault(self, err):
        self._log_overflows()
        self.overflows_logged = 0  # the next driver counts from zero
        self.stats["faults"] += 1
        self.sensor = None
        self.sampler = None
        self.retry_at = self.board.ticks_ms() + self.backoff
        self._status("sensor_fault", {"error": str(err), "retry_ms": self.backoff})
        self.backoff = min(2 * self.backoff, _BACKOFF_MAX_MS)

    # --- running --------------------------------------------------------------------------
    def step(self):
        """One pass of the main loop; returns the number of samples processed."""
        b = self.board
        now = b.ticks_ms()
        self.wdt.feed()
        n = 0
        if self.sampler is None:
            if ticks_diff(now, self.retry_at) >= 0:
                self.start_sensor()
        else:
            try:
                n = self.sampler.poll()
                if n:
                    self.last_data = now
                elif ticks_diff(now, self.last_data) > _STALL_MS:
                    raise SensorError("no samples for %d ms" % ticks_diff(now, self.last_data))
            except (SensorError, OSError) as e:
                self._fault(e)
                n = 0
            else:
                self.hb_samples += n
                while True:
                    st = self.sampler.drain(self.pipe)
                    if not st:
                        break
                    self._on_status(st)
        if ticks_diff(now, self.hb_at) >= self.hb_every:
            self._heartbeat(now)
        if self.send is not None and self.outbox.items:
            self.outbox.flush(self.send)
        return n

    def _on_status(self, st):
        if st == pipeline.TRIGGER:
            self.stats["triggers"] += 1
            return
        if st == pipeline.REJECTED:
            self.stats["rejected"] += 1
            return
        pipe = self.pipe
        if pipe is None:  # no status without a pipeline; keeps the type checker honest
            return
        ev = pipe.event()
        t = self.board.unix_time()
        ev["final"] = st == pipeline.END
        seq = self.log.append_json(eventlog.T_EVENT, ev, t or 0)
        if st == pipeline.DETECTION:
            self.stats["detections"] += 1
            self.last_detection = seq
            self.outbox.put(telemetry.detection(self.node_id, seq, t, self.board.ticks_ms(), ev, self.cfg["location"]))

    def health(self):
        """The status a heartbeat carries (and `seismote monitor` shows)."""
        s = self.sensor
        st = {
            "sensor": "ok" if s is not None else "fault",
            "overflows": s.overflows if s is not None else None,
            "lost": s.lost if s is not None else None,
            "dropped": self.sampler.dropped if self.sampler is not None else None,
            "ratio": self.pipe.trig.ratio / 16 if self.pipe is not None else None,
            "free_heap": self.board.free_heap(),
            "log_next_seq": self.log.stats()["next_seq"],
            "outbox_dropped": self.outbox.dropped,
            "last_detection": self.last_detection,
        }
        st.update(self.stats)
        return st

    def _heartbeat(self, now):
        elapsed = ticks_diff(now, self.hb_at)
        st = self.health()
        st["rate_hz"] = round(self.hb_samples * 1000 / elapsed, 2) if elapsed > 0 else None
        self.hb_at = now
        self.hb_samples = 0
        self._log_overflows()
        self.outbox.put(telemetry.heartbeat(self.node_id, self.board.unix_time(), now, st))

    def run(self, poll_ms=40):
        self.boot()
        while True:
            self.step()
            self.board.sleep_ms(poll_ms)
