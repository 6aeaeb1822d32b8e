"""``config/assets.yaml``: the sites we defend, their network zones and the assets in them.

Each site has a sector, a location and a criticality; its zones (IT, OT, DMZ) own network
ranges; its assets carry vendor/product/version so advisories can be matched to them.
"""
from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from settings.base import StrictModel

SECTORS = ("energy", "water", "transport", "telecom", "health", "finance", "government", "other")


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"{text!r} is not a network (use CIDR such as 10.20.0.0/16)") from None


class Zone(StrictModel):
    name: str
    kind: Literal["IT", "OT", "DMZ"]
    networks: list[Annotated[str, AfterValidator(_network)]] = Field(min_length=1)


class Asset(StrictModel):
    id: str
    name: str
    ip: str | None = None
    zone: str | None = None
    vendor: str | None = None
    product: str | None = None
    version: str | None = None
    role: str | None = None
    criticality: int | None = Field(default=None, ge=1, le=5)

    @field_validator("ip")
    @classmethod
    def _ip(cls, ip: str | None) -> str | None:
        if ip is None:
            return None
        try:
            return str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValueError(f"{ip!r} is not an IP address") from None


class Site(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    sector: Literal["energy", "water", "transport", "telecom", "health", "finance", "government", "other"]
    city: str | None = None
    country: str = "TH"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    criticality: int = Field(ge=1, le=5)
    zones: list[Zone] = Field(min_length=1)
    assets: list[Asset] = []

    @model_validator(mode="after")
    def _assets_in_zones(self) -> "Site":
        zone_names = {z.name for z in self.zones}
        for asset in self.assets:
            if asset.zone is not None and asset.zone not in zone_names:
                raise ValueError(f"asset {asset.id!r} names zone {asset.zone!r}, which site {self.id!r} does not have")
        return self


class Inventory(StrictModel):
    sites: list[Site] = []
    #: Other names advisories use for one of our vendors (renames, acquisitions): ``{"GE Vernova":
    #: ["GE Digital", "General Electric"]}``. Compared as exposure matching compares vendor names.
    vendor_aliases: dict[str, list[str]] = {}

    @field_validator("vendor_aliases")
    @classmethod
    def _aliases_name_one_vendor(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from pipeline.exposure_findings import vendor_key

        owner: dict[str, str] = {}
        for vendor, aliases in value.items():
            for name in (vendor, *aliases):
                key = vendor_key(name)
                if not key:
                    raise ValueError(f"{vendor!r}: {name!r} is not a vendor name")
                if owner.setdefault(key, vendor) != vendor:
                    raise ValueError(f"{name!r} is listed for both {owner[key]!r} and {vendor!r}")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> "Inventory":
        seen: set[str] = set()
        for site in self.sites:
            if site.id in seen:
                raise ValueError(f"site id {site.id!r} appears twice")
            seen.add(site.id)
        return self
