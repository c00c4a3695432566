"""Detector data sets, training and int8 TFLite export (under construction)."""
