"""The service catalog: YAML format (spec), validation (parse, rules, crossfile), CLI."""
