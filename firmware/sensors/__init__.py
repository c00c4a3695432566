"""Accelerometer drivers. Each takes a bus object (SPI or I2C), never pins."""
