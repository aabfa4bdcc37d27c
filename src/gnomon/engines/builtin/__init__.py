"""The engines shipped with gnomon: each module here defines `ENGINE = EngineKind(...)`, and the
registry finds every module of this package, so adding an engine is adding a module."""
