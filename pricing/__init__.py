"""The price table as data (token_prices.csv, image_prices.csv, model_aliases.csv) and the tool that refreshes it.

`python -m pricing.refresh` rebuilds token_prices.csv from the AWS Price List API; see pricing/README.md.
"""
