"""Developer tools for synthgate: a fake OpenAI-compatible upstream, demo setup and benchmark helpers.

Nothing in this package is used by the gateway at run time.
"""
