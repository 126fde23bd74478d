"""The web dashboard: server-rendered pages over the engine (a transport: parse, call, render)."""
