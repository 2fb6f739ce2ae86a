"""Layer 2, the model: the inference kernel (memory fit, prefill and decode step times, throughput;
:mod:`.kernel`), cost per million tokens from capex, power, price of electricity, utilisation and currency
(:mod:`.cost`), the kernel's calibration against measured deployments (:mod:`.calibrate`, fitted terms in
``calibration.json``) and a fleet's daily economics (:mod:`.fleet`).

Imports the data layer and the base modules only.
"""
