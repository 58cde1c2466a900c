"""Prices: routes from an asset to a valuation currency, live and past."""
