"""The demo dataset's generator: beside the flow, not installed. `python -m tools.demo_data`."""
