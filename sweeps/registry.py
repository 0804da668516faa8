"""The registry of sweep drivers: a name (``driver = "optuna"`` in a sweep file) and the module
that defines its ``DRIVER`` (:class:`sweeps.drivers.Driver`). A new driver is one module plus
one line here. Modules are imported when used: a tuner is imported only if it runs."""

DRIVERS: dict[str, str] = {
    "optuna": "sweeps.optuna_driver",
    "kerastuner": "sweeps.kerastuner_driver",
}
