//! Closed value sets of the ECS image APIs (Architecture, Platform, BootMode …) as Rust enums
//! with their exact wire spelling, so requests can only carry documented values
//! (docs/CLOUD-API.md §ImportImage, §ModifyImageAttribute).

/// Declares an enum whose variants map to fixed wire strings, with `as_str`, a
/// case-insensitive `parse`, `ALL`, `Display` and string serde.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The exact spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }

            /// Parses a wire value, ignoring ASCII case (the service accepts both
            /// `linux` and `Linux`, `qcow2` and `QCOW2`).
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} value {s:?}",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

wire_enum! {
    /// CPU architecture of the image (default `x86_64`).
    Architecture {
        I386 => "i386",
        X86_64 => "x86_64",
        Arm64 => "arm64",
    }
}

wire_enum! {
    /// Operating system type (default `linux`).
    OsType {
        Linux => "linux",
        Windows => "windows",
    }
}

wire_enum! {
    /// The 27 documented distributions of ImportImage (default `Others Linux`); CreateImage
    /// names all but `Other Windows`.
    Platform {
        Aliyun => "Aliyun",
        Anolis => "Anolis",
        CentOs => "CentOS",
        Ubuntu => "Ubuntu",
        CoreOs => "CoreOS",
        Suse => "SUSE",
        Debian => "Debian",
        OpenSuse => "OpenSUSE",
        FreeBsd => "FreeBSD",
        RedHat => "RedHat",
        Kylin => "Kylin",
        Uos => "UOS",
        Fedora => "Fedora",
        FedoraCoreOs => "Fedora CoreOS",
        CentOsStream => "CentOS Stream",
        AlmaLinux => "AlmaLinux",
        RockyLinux => "Rocky Linux",
        Gentoo => "Gentoo",
        CustomizedLinux => "Customized Linux",
        OthersLinux => "Others Linux",
        WindowsServer2022 => "Windows Server 2022",
        WindowsServer2019 => "Windows Server 2019",
        WindowsServer2016 => "Windows Server 2016",
        WindowsServer2012 => "Windows Server 2012",
        WindowsServer2008 => "Windows Server 2008",
        WindowsServer2003 => "Windows Server 2003",
        /// Any Windows the list does not name (Server 2025, client editions).
        OtherWindows => "Other Windows",
    }
}

wire_enum! {
    /// Firmware boot mode. ImportImage documents only BIOS/UEFI; ModifyImageAttribute also
    /// takes `UEFI-Preferred`.
    BootMode {
        Bios => "BIOS",
        Uefi => "UEFI",
        UefiPreferred => "UEFI-Preferred",
    }
}

wire_enum! {
    /// How the OS is licensed after import (default `Auto`).
    LicenseType {
        Auto => "Auto",
        Aliyun => "Aliyun",
        Byol => "BYOL",
    }
}

wire_enum! {
    /// Image check run during import; only `Standard` exists.
    DetectionStrategy {
        Standard => "Standard",
    }
}

wire_enum! {
    /// Format of an imported disk object; absent means auto-detect.
    DiskFormat {
        Raw => "RAW",
        Vhd => "VHD",
        Qcow2 => "QCOW2",
        /// Documented as an invitational preview.
        Vmdk => "VMDK",
    }
}

wire_enum! {
    /// `Features.NvmeSupport`.
    NvmeSupport {
        Supported => "supported",
        Unsupported => "unsupported",
    }
}

wire_enum! {
    /// `Features.ImdsSupport` (v1 → v2 only, never back).
    ImdsSupport {
        V1 => "v1",
        V2 => "v2",
    }
}

wire_enum! {
    /// Image states; DescribeImages shows only `Available` unless others are asked for.
    ImageStatus {
        Creating => "Creating",
        Waiting => "Waiting",
        Available => "Available",
        UnAvailable => "UnAvailable",
        CreateFailed => "CreateFailed",
        Deprecated => "Deprecated",
    }
}

wire_enum! {
    /// Status values ModifyImageAttribute may set.
    ModifiableStatus {
        Deprecated => "Deprecated",
        Available => "Available",
    }
}

wire_enum! {
    /// `ImageOwnerAlias` filter of DescribeImages.
    ImageOwnerAlias {
        System => "system",
        SelfOwned => "self",
        Others => "others",
        Marketplace => "marketplace",
    }
}

impl ImageStatus {
    /// The states a poll must ask for so an importing image stays visible (what
    /// terraform-provider-alicloud passes, plus Deprecated).
    pub const POLLING: &'static [ImageStatus] = &[
        ImageStatus::Creating,
        ImageStatus::Waiting,
        ImageStatus::Available,
        ImageStatus::UnAvailable,
        ImageStatus::CreateFailed,
        ImageStatus::Deprecated,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_has_the_27_documented_values() {
        assert_eq!(Platform::ALL.len(), 27);
        assert_eq!(
            Platform::parse("Other Windows"),
            Some(Platform::OtherWindows)
        );
        assert_eq!(Platform::parse("others linux"), Some(Platform::OthersLinux));
        assert_eq!(Platform::parse("Windows 95"), None);
    }

    #[test]
    fn parse_ignores_case() {
        assert_eq!(OsType::parse("Linux"), Some(OsType::Linux));
        assert_eq!(DiskFormat::parse("qcow2"), Some(DiskFormat::Qcow2));
        assert_eq!(Architecture::parse("arm64"), Some(Architecture::Arm64));
        assert_eq!(Architecture::parse("aarch64"), None);
        assert_eq!(
            BootMode::parse("uefi-preferred"),
            Some(BootMode::UefiPreferred)
        );
    }

    #[test]
    fn serde_uses_wire_spelling() {
        assert_eq!(
            serde_json::to_string(&Platform::RockyLinux).unwrap(),
            "\"Rocky Linux\""
        );
        let s: ImageStatus = serde_json::from_str("\"CreateFailed\"").unwrap();
        assert_eq!(s, ImageStatus::CreateFailed);
    }
}
