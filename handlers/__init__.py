"""Lambda entry points (template.yaml ``Handler: handlers.<name>.handler``).

Thin composition roots: each builds its runtime once per container (``wayline.aws.runtime``),
turns the Lambda event into records, and hands each to ``wayline.aws.processing`` or the
API app. ``make_handler(get_runtime)`` builds a handler around any runtime (tests inject
one on moto with a virtual clock); ``handler`` is the one Lambda calls, built from the
environment.
"""
