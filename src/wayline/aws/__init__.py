"""AWS adapters: boto3 lives only here and in ``wayline.store.dynamodb*``.

``clients`` builds every boto3 client (one botocore ``Config``) and translates AWS errors
into ``wayline.errors``; ``s3`` offloads payloads too large for a DynamoDB item.
"""
