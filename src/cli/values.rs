//! Value parsers for flags that several commands share: secrets, byte sizes, part sizes.

use clap::ValueEnum;
use imgport_base::secret::Secret;
use imgport_core::plan::PartSize;

/// A secret from the command line or the environment.
pub(crate) fn secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// Parses a byte size: a number with an optional K, M, G (binary) suffix, e.g. `64M`, `1GiB`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {s:?} (use K, M or G)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))?;
    if v == 0 || v > 5 << 30 {
        return Err(format!(
            "part size must be between 1 byte and 5 GiB, not {s:?}"
        ));
    }
    Ok(v)
}

/// A part size (`64M`, `131072`) within OSS's bounds.
pub(crate) fn part_size(s: &str) -> Result<PartSize, String> {
    let bytes = parse_size(s)?;
    PartSize::new(bytes).map_err(|e| e.to_string())
}

/// A part-memory budget (`256M`): at least 1 MiB, at most what a byte size parses to.
pub(crate) fn part_memory(s: &str) -> Result<u64, String> {
    let bytes = parse_size(s).map_err(|e| e.replace("part size", "part memory"))?;
    if bytes < 1 << 20 {
        return Err(format!("part memory must be at least 1 MiB, not {s:?}"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("6G").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}

/// Container formats as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Raw,
    Vhd,
    Qcow2,
    /// Read only: converted to an output format.
    Vmdk,
    /// Read only: converted to an output format.
    Vhdx,
}

impl From<FormatArg> for imgport_image::ImageFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Raw => imgport_image::ImageFormat::Raw,
            FormatArg::Vhd => imgport_image::ImageFormat::Vhd,
            FormatArg::Qcow2 => imgport_image::ImageFormat::Qcow2,
            FormatArg::Vmdk => imgport_image::ImageFormat::Vmdk,
            FormatArg::Vhdx => imgport_image::ImageFormat::Vhdx,
        }
    }
}

/// The parser of an output format flag (`--to`): the values of `T`, and for a format imgport
/// only reads (VHDX) a refusal that says so instead of clap's "invalid value".
#[derive(Clone)]
pub struct OutputParser<T>(std::marker::PhantomData<T>);

impl<T> OutputParser<T> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> Default for OutputParser<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> clap::builder::TypedValueParser
    for OutputParser<T>
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let given = value.to_string_lossy();
        if let Some(f) = imgport_image::ImageFormat::INPUT_ONLY
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(&given))
        {
            let flag = arg
                .and_then(|a| a.get_long())
                .map_or("--to".to_string(), |l| format!("--{l}"));
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "{flag} {given}: {} is an input format only; imgport reads it and converts it to raw, vhd, vhd-fixed or qcow2, but never writes it (ECS does not import it)\n",
                    f.name().to_uppercase()
                ),
            )
            .with_cmd(cmd));
        }
        clap::builder::EnumValueParser::<T>::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value()),
        ))
    }
}
