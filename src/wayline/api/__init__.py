"""The HTTP API and (soon) the dashboard: one package served by ``wayline dev``, by the AWS
api handler and by ``wayline dashboard --stack``. It talks to the engine only through
``engine.service.Service`` and the store ports, never to a concrete store."""
