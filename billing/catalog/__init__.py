"""The plan catalog: YAML files in ``plans/`` validated into domain plans and dunning policies."""
