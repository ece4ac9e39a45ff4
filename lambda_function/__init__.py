"""Amazon Bedrock usage-and-cost report: `lambda_handler` for Lambda, `python -m lambda_function` for people."""

from lambda_function.handler import lambda_handler, run_report

__all__ = ["lambda_handler", "run_report"]
