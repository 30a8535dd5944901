//! Windows version numbers → product names and the ImportImage `Platform` value.
//!
//! Pure functions. Rules from docs/INSPECTION.md §Windows (libguestfs osinfo mapping, build ≥ 22000
//! is Windows 11, servers by build: 14393 = 2016, 17763 = 2019, 20348 = 2022, 26100 = 2025) and the
//! ImportImage `Platform` list (docs/CLOUD-API.md §ImportImage): it names Windows Server 2003 to
//! 2022; every other Windows (Server 2025, 2000, client editions) is [`OTHER_WINDOWS`].

/// The ImportImage `Platform` of a Windows the list does not name (docs/CLOUD-API.md
/// §ImportImage).
pub const OTHER_WINDOWS: &str = "Other Windows";

/// What the version values say about the product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// E.g. `Windows Server 2022`, `Windows Server 2012 R2`, `Windows 11`.
    pub name: String,
    /// The ImportImage `Platform` value: the product's own when the list names it, else
    /// [`OTHER_WINDOWS`].
    pub platform: &'static str,
}

/// Inputs read from `CurrentVersion`.
#[derive(Debug, Clone, Default)]
pub struct VersionInfo {
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub build: Option<u32>,
    pub server: bool,
    pub product_name: String,
}

/// Server year by 10.0 build (Microsoft's release information; docs/INSPECTION.md §Windows).
const SERVER_BUILDS: [(u32, &str); 4] = [
    (14393, "2016"),
    (17763, "2019"),
    (20348, "2022"),
    (26100, "2025"),
];

/// The first Windows 11 build; Windows 11 still says "Windows 10" in ProductName.
pub const WINDOWS_11_BUILD: u32 = 22000;

/// The documented ImportImage platform of a server product name, if any.
fn server_platform(name: &str) -> Option<&'static str> {
    [
        ("Windows Server 2022", "Windows Server 2022"),
        ("Windows Server 2019", "Windows Server 2019"),
        ("Windows Server 2016", "Windows Server 2016"),
        ("Windows Server 2012", "Windows Server 2012"),
        ("Windows Server 2008", "Windows Server 2008"),
        ("Windows Server 2003", "Windows Server 2003"),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, p)| p)
}

/// Names the product. `None` when the version values are missing.
pub fn product(v: &VersionInfo) -> Option<Product> {
    let (major, minor) = (v.major?, v.minor?);
    let r2 = v.product_name.contains("R2");
    let name = if v.server {
        match (major, minor) {
            (10, 0) => {
                let year = v
                    .build
                    .and_then(|b| SERVER_BUILDS.iter().find(|(n, _)| *n == b))
                    .map(|(_, y)| *y)
                    .or_else(|| {
                        // Other 10.0 server builds (semi-annual channel, previews): trust the
                        // year in ProductName, as libguestfs does.
                        ["2025", "2022", "2019", "2016"]
                            .into_iter()
                            .find(|y| v.product_name.contains(y))
                    });
                match year {
                    Some(y) => format!("Windows Server {y}"),
                    None => format!("Windows Server (build {})", v.build.unwrap_or(0)),
                }
            }
            (6, 3) => "Windows Server 2012 R2".into(),
            (6, 2) => "Windows Server 2012".into(),
            (6, 1) => "Windows Server 2008 R2".into(),
            (6, 0) => "Windows Server 2008".into(),
            (5, 2) if r2 => "Windows Server 2003 R2".into(),
            (5, 2) => "Windows Server 2003".into(),
            (5, 0) => "Windows 2000 Server".into(),
            (4, 0) => "Windows NT 4.0 Server".into(),
            _ => format!("Windows Server {major}.{minor}"),
        }
    } else {
        match (major, minor) {
            (10, 0) if v.build.is_some_and(|b| b >= WINDOWS_11_BUILD) => "Windows 11".into(),
            (10, 0) => "Windows 10".into(),
            (6, 3) => "Windows 8.1".into(),
            (6, 2) => "Windows 8".into(),
            (6, 1) => "Windows 7".into(),
            (6, 0) => "Windows Vista".into(),
            (5, 1) | (5, 2) => "Windows XP".into(),
            (5, 0) => "Windows 2000".into(),
            (4, 0) => "Windows NT 4.0".into(),
            _ => format!("Windows {major}.{minor}"),
        }
    };
    let platform = if v.server {
        server_platform(&name).unwrap_or(OTHER_WINDOWS)
    } else {
        OTHER_WINDOWS
    };
    Some(Product { name, platform })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(major: u32, minor: u32, build: u32, name: &str) -> Product {
        product(&VersionInfo {
            major: Some(major),
            minor: Some(minor),
            build: Some(build),
            server: true,
            product_name: name.into(),
        })
        .unwrap()
    }

    fn client(major: u32, minor: u32, build: u32) -> Product {
        product(&VersionInfo {
            major: Some(major),
            minor: Some(minor),
            build: Some(build),
            server: false,
            product_name: "Windows 10 Pro".into(),
        })
        .unwrap()
    }

    #[test]
    fn servers_by_build_and_platforms() {
        let cases = [
            (
                10,
                0,
                20348,
                "x",
                "Windows Server 2022",
                "Windows Server 2022",
            ),
            (
                10,
                0,
                17763,
                "x",
                "Windows Server 2019",
                "Windows Server 2019",
            ),
            (
                10,
                0,
                14393,
                "x",
                "Windows Server 2016",
                "Windows Server 2016",
            ),
            (10, 0, 26100, "x", "Windows Server 2025", OTHER_WINDOWS),
            (
                10,
                0,
                19042,
                "Windows Server Datacenter",
                "Windows Server (build 19042)",
                OTHER_WINDOWS,
            ),
            (
                10,
                0,
                25398,
                "Windows Server 2022 Datacenter",
                "Windows Server 2022",
                "Windows Server 2022",
            ),
            (
                6,
                3,
                9600,
                "x",
                "Windows Server 2012 R2",
                "Windows Server 2012",
            ),
            (
                6,
                2,
                9200,
                "x",
                "Windows Server 2012",
                "Windows Server 2012",
            ),
            (
                6,
                1,
                7601,
                "x",
                "Windows Server 2008 R2",
                "Windows Server 2008",
            ),
            (
                6,
                0,
                6002,
                "x",
                "Windows Server 2008",
                "Windows Server 2008",
            ),
            (
                5,
                2,
                3790,
                "Windows Server 2003 R2",
                "Windows Server 2003 R2",
                "Windows Server 2003",
            ),
            (
                5,
                2,
                3790,
                "x",
                "Windows Server 2003",
                "Windows Server 2003",
            ),
        ];
        for (ma, mi, b, pn, name, platform) in cases {
            let p = server(ma, mi, b, pn);
            assert_eq!(p.name, name, "{ma}.{mi}.{b}");
            assert_eq!(p.platform, platform, "{ma}.{mi}.{b}");
        }
    }

    #[test]
    fn clients_are_other_windows() {
        assert_eq!(client(10, 0, 22631).name, "Windows 11");
        assert_eq!(client(10, 0, 22000).name, "Windows 11");
        assert_eq!(client(10, 0, 19045).name, "Windows 10");
        assert_eq!(client(6, 1, 7601).name, "Windows 7");
        assert_eq!(client(10, 0, 22631).platform, OTHER_WINDOWS);
        assert_eq!(client(6, 1, 7601).platform, OTHER_WINDOWS);
        assert!(
            product(&VersionInfo {
                major: None,
                ..Default::default()
            })
            .is_none()
        );
    }
}
