"""Layer 3, the analyses the chapters draw on: the price record (:mod:`.prices`), prices at fixed capability
(:mod:`.capability`), export-control metrics (:mod:`.export_controls`), subsidies and vouchers
(:mod:`.subsidies`), geography (:mod:`.geography`), the token budget of a chip fleet
(:mod:`.token_budget`) and the city race's equation and Monte Carlo (:mod:`.crown`).

Imports the model and data layers and the base modules; never the book layer.
"""
