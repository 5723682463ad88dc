"""Monitoring: how the models do once their lists are used: model_outcomes (realized against
expected precision, the campaign's uplift), its checks, its job and the sensors that run it."""
