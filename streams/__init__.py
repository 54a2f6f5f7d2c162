"""The Faust app, its agents and topics, the CLI and the embedded dev infrastructure."""
