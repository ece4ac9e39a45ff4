"""The price tables as data (token_prices.csv, image_prices.csv, model_aliases.csv, ...) and the maintainers' tools.

The function ships the tables only (scripts/package.py) and reads them from `lambda_function.config.PACKAGE_ROOT /
"pricing"`; the tools import the product (`lambda_function.pricing`), never the reverse.
`python -m pricing.refresh` rebuilds token_prices.csv from the AWS Price List API; see pricing/README.md.
"""
