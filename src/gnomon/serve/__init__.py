"""`gnomon serve`: a local model behind an OpenAI-compatible HTTP API, so a model on one machine
can be evaluated from another and OpenAI-compatible clients can be tested against a real server.

Importing this package is cheap; FastAPI, torch and uvicorn load with `gnomon.serve.app`.
"""
