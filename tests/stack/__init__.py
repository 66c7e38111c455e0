"""Tests of the deployable stack: compose, Prometheus config and rules, Grafana dashboard."""
