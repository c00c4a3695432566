"""SimPy network simulator for planning seismote deployments (under construction)."""
