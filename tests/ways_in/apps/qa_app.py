"""A DSPy app with no tracing code: the zero-code launcher (``opentelemetry-instrument``) traces it."""

import json

import program

program.configure_from_env()
print(json.dumps({"answers": program.run()}))
