"""Service requests: a developer asks for a catalog item or bundle; PAO plans and runs its fulfillment.

``parameters`` (checks against presentation fields), ``plan`` (steps from fulfillment),
``secrets`` (encryption at rest), ``render`` (Jinja2 sandbox), ``store`` (SQL),
``submit`` (the submission transaction), ``executor`` (the job that runs a step),
``steps/`` (one module per step type).
"""
