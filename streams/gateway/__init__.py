"""The gateway: alerts pushed to traders over HTTP (SSE, WebSocket, history, a live page)."""
