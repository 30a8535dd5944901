//! What inspection reads from one Windows system volume.

use serde::{Deserialize, Serialize};

use crate::facts::DriverFacts;
use imgport_image::Finding;

/// Everything read from one Windows system volume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowsFacts {
    /// The SystemRoot directory as found on the volume, e.g. `/Windows`.
    pub systemroot: String,
    /// `ProductName` as the registry says it (Windows 11 says "Windows 10 …").
    pub product_name: Option<String>,
    /// Our name for the product, e.g. `Windows Server 2022`, `Windows 11`.
    pub product: Option<String>,
    /// `EditionID`, e.g. `ServerDatacenter`, `Professional`.
    pub edition_id: Option<String>,
    /// `InstallationType`: `Client`, `Server`, `Server Core` or `Nano Server`.
    pub installation_type: Option<String>,
    /// `ProductType` of the SYSTEM hive's `Control\ProductOptions`: `WinNT` on a
    /// workstation, `ServerNT` or `LanmanNT` on a server (the one mark every NT version has).
    pub product_type: Option<String>,
    /// True for server editions.
    pub server: bool,
    pub major_version: Option<u32>,
    pub minor_version: Option<u32>,
    /// `CurrentBuildNumber` (or `CurrentBuild`).
    pub build: Option<u32>,
    /// Update build revision (`UBR`).
    pub ubr: Option<u32>,
    /// `DisplayVersion`, e.g. `21H2`.
    pub display_version: Option<String>,
    /// `major.minor.build`, e.g. `10.0.20348`.
    pub version: Option<String>,
    /// ImportImage `Platform`: the product's own when the list names it, else `Other Windows`;
    /// `None` when the version is unknown.
    pub platform: Option<String>,
    /// `i386`, `x86_64` or `arm64`.
    pub architecture: Option<String>,
    /// The control set `Select\Current` names, e.g. `ControlSet001`.
    pub current_control_set: Option<String>,
    pub hostname: Option<String>,
    pub drivers: DriverFacts,
    /// cloudbase-init installed (service or program directory) and not disabled.
    pub cloud_init: Option<bool>,
    pub findings: Vec<Finding>,
    /// The facts that failed reads left unknown, e.g. `the version, edition and Platform`
    /// (the reads themselves are in the caller's `ReadLog`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}
