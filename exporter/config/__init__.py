"""The configuration: the YAML file and BTCTURK_* variables, validated into typed settings."""
