"""Load the Jena climate record: the real file, a synthetic stand-in or any CSV in the Jena format.

``load(spec)`` accepts

* ``"jena"``: the real ``jena_climate_2009_2016.csv``, downloaded once into :func:`cache_dir`
  and verified every time it is used (:mod:`jena.data.download`);
* ``"synthetic"``, ``"synthetic:ROWS"`` or ``"synthetic:ROWS:SEED"``: the stand-in of
  :func:`jena.synthetic.generate` (default 420,551 rows, seed 0);
* a path to a CSV file in the Jena format (see :mod:`jena.schema`).

Loading is strict, then repairs what it safely can and says so:

* parsing (:mod:`jena.data.reading`) accepts only the Jena format; anything else is a
  :class:`~jena.errors.DataError` with one line naming the file, the line, the column and what to
  do;
* repair (:mod:`jena.data.repair`) puts the record on the full 10-minute grid: off-grid
  timestamps rounded, rows sorted, duplicated timestamps dropped (the first kept), missing rows
  and missing values interpolated in time, rows inside a long gap marked invalid;
* physical checks (also in :mod:`jena.data.repair`): sentinels (``-9999`` and the like, in any
  column) and isolated values outside a column's physical range are missing values, interpolated;
  a row breaking a relation between columns (``Tpot`` vs ``T`` and ``p``, ``Tdew <= T``,
  ``VPact <= VPmax``, ``rh`` vs ``VPact / VPmax``) is kept as read and marked invalid; a column
  with more than 10% of its values out of range (temperatures in kelvin, pressure in Pa ...), or a
  relation broken by more than 10% of the rows, is refused with a one-line
  :class:`~jena.errors.DataError` naming the file, the column and what to do.

Every count is in the :class:`RepairReport` (``jena data info`` prints it); counts reconcile, and a
clean file comes through bit for bit with "no defects found".

The modules: :mod:`~jena.data.reading` (CSV parsing and its errors), :mod:`~jena.data.repair`
(the repair policy and its report), :mod:`~jena.data.download` (download and cache of the real
file), :mod:`~jena.data.dataset` (:class:`Dataset`, specs, :func:`load`, :func:`info`).
"""

from __future__ import annotations

from .dataset import Dataset, DataSpec, Provenance, info, load, parse_spec, spec_from_source
from .download import DOWNLOAD_TIMEOUT, JENA_URLS, cache_dir, fetch_jena, verify_jena_file
from .reading import read_csv
from .repair import MAX_GAP_ROWS, Gap, RepairReport, ValueRun, repair

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "JENA_URLS",
    "MAX_GAP_ROWS",
    "DataSpec",
    "Dataset",
    "Gap",
    "Provenance",
    "RepairReport",
    "ValueRun",
    "cache_dir",
    "fetch_jena",
    "info",
    "load",
    "parse_spec",
    "read_csv",
    "repair",
    "spec_from_source",
    "verify_jena_file",
]
