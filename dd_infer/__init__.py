"""The inference service: registry models run on user text, in a process of their own.

The API process never imports torch; it reaches this service over HTTP on a local socket
(`dd_api.api.inference` is the client, `dd_infer.launch` starts the process). Nothing here is
imported by the API.
"""
