//! What every cloud command does before it sends: under `--json` a local refusal is an error
//! object with the rule's code (and field), exit 2; a valid request is sent. One table per
//! behaviour, across the commands; each command's own rules are tables in its file.

use super::*;
use imgport::sim::kec::INSTANCE_STOPPED;

#[test]
fn json_refusals_carry_the_code_and_field() {
    let i = INSTANCE_STOPPED;
    // A case: name, arguments after `--endpoint DEAD_ENDPOINT --json`, the code and the
    // field (when the rule names one).
    type Refusal<'a> = (&'a str, Vec<&'a str>, &'a str, Option<&'a str>);
    let cases: Vec<Refusal<'_>> = vec![
        (
            "create: system disk 4 GiB",
            vec!["image", "create", "--disk", "size=4"],
            "InvalidSize.ValueNotSupported",
            Some("DiskDeviceMapping.1.Size"),
        ),
        (
            "ehpc: empty VM image id",
            vec!["ehpc", "add-image", "--name", "n", "--vm-image-id", ""],
            "InvalidParams",
            None,
        ),
        (
            "modify: empty image id",
            vec!["image", "modify", ""],
            "MissingParameter",
            None,
        ),
        (
            "ksyun: short password",
            vec![
                "ksyun",
                "reinstall",
                "--instance",
                i,
                "--password",
                "short1A",
            ],
            "InstancePasswordInvalidParameterValue",
            None,
        ),
    ];
    let mut failed = Vec::new();
    for (name, args, code, field) in &cases {
        let mut all = args.clone();
        all.extend(["--endpoint", DEAD_ENDPOINT, "--json"]);
        let run = cli(&all);
        let v: serde_json::Value = serde_json::from_slice(&run.out.stdout).unwrap_or_default();
        let got = (
            run.code(),
            v["error"]["code"].as_str().unwrap_or_default(),
            v["error"]["field"].as_str(),
        );
        // A refused password is not echoed either.
        let leaked = args
            .iter()
            .position(|a| *a == "--password")
            .map(|p| args[p + 1])
            .filter(|pw| run.stdout().contains(pw));
        if got != (2, *code, field.or(got.2)) || leaked.is_some() {
            failed.push(format!(
                "{name}: `{}` gave {got:?}, want (2, {code:?}, {field:?}); leaked {leaked:?}\n{}",
                run.cmd,
                run.stdout()
            ));
        }
    }
    assert_all_passed(&failed, cases.len());
}

#[test]
fn valid_requests_are_sent() {
    // Against the dead endpoint a sent request is a cloud error: exit 4.
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "create from a snapshot",
            vec!["image", "create", "--snapshot", "s-1", "--timeout", "2"],
        ),
        (
            "ksyun reinstall keeping the image login",
            vec![
                "ksyun",
                "reinstall",
                "--instance",
                INSTANCE_STOPPED,
                "--keep-image-login",
            ],
        ),
    ];
    let mut failed = Vec::new();
    for (name, args) in &cases {
        let mut all = args.clone();
        all.extend(["--endpoint", DEAD_ENDPOINT]);
        let run = cli(&all);
        if run.code() != 4 {
            failed.push(format!(
                "{name}: `{}` exited {}, want 4\n{}",
                run.cmd,
                run.code(),
                run.stderr()
            ));
        }
    }
    assert_all_passed(&failed, cases.len());
}
