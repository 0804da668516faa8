"""The registry of sweep drivers: a name (``driver = "optuna"`` in a sweep file) and the class
that implements it (:class:`sweeps.drivers.Driver`), as ``module:Class``. A new driver is one
module (or package) plus one line here. A driver's package is imported when the driver is
named; its tuner only when it runs."""

DRIVERS: dict[str, str] = {
    "optuna": "sweeps.optuna:OptunaDriver",
    "kerastuner": "sweeps.kerastuner:KerasTunerDriver",
}
