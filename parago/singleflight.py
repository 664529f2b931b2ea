"""pg.singleflight: golang.org/x/sync/singleflight's duplicate call suppression, across every P."""

from ._singleflight import Group as Group

__all__ = ["Group"]
