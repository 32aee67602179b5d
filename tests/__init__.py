"""The test suite as a package: `tests.<area>` helpers import as such even when a dependency ships its own
top-level `tests` package (dcase_util does), since a regular package on the path wins over a namespace one."""
