"""AWS adapters: boto3 lives only here and in ``wayline.store.dynamodb*``.

``clients``      every boto3 client (one botocore ``Config``, one shared session) and the
                 translation of AWS errors into ``wayline.errors``
``s3``           offload of payloads too large for a DynamoDB item
``eventbridge``  publishing events to the bus (PutEvents, 10 per call, retries) and
                 reading them back in ingest, with deterministic event ids
``sqs``          sending work items to the work queue (DelaySeconds <= 900 s)
``scheduler``    one-time ``at()`` wake-ups and per-trigger ``cron()`` schedules
``work_queue``   the engine's ``WorkQueue`` port on SQS + Scheduler
``invoker``      signed, synchronous HTTP calls to apps' serve endpoints
``processing``   what the ingest, dispatch and timers functions do with one record
``api``          the api function's HTTP API (the dev server's routes, AWS differences)
``function_url`` Lambda Function URL events <-> ASGI
``runtime``      settings from the environment and the wiring of one Lambda container
"""
