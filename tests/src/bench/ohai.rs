//! An ohai-like `automatic` attribute tree of about 2,000 leaves, shaped like a real Linux
//! node's (kernel modules, packages, filesystems, network, cpu, memory, block devices, dmi),
//! varied per node: addresses, host names, uptime, free memory, some package versions and
//! the platform differ, the rest is the fleet's common shape. Deterministic for a node number.

use serde_json::{Map, Value, json};

/// Platforms, in the proportion the search benchmark counts on: half the fleet is ubuntu.
pub fn platform(i: usize) -> &'static str {
    match i % 4 {
        0 | 2 => "ubuntu",
        1 => "centos",
        _ => "debian",
    }
}

/// A small deterministic mix of `i` and `salt`.
fn mix(i: usize, salt: u64) -> u64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

/// The automatic attributes of node `i` named `name`; `run` changes what a new chef-client
/// run would (uptime, free memory, the ohai timestamp).
pub fn automatic(i: usize, name: &str, run: u64) -> Value {
    let platform = platform(i);
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let modules: Map<String, Value> = (0..150)
        .map(|m| {
            (
                format!("mod_{m:03}"),
                json!({"size": format!("{}", 4096 + m * 64), "refcount": format!("{}", m % 5), "version": format!("{}.{}", m % 7, m % 3)}),
            )
        })
        .collect();
    let packages: Map<String, Value> = (0..450)
        .map(|p| {
            let patch = if mix(i, p as u64).is_multiple_of(10) {
                2
            } else {
                1
            };
            (
                format!("pkg-{p:03}"),
                json!({"version": format!("1.{}.{patch}", p % 20), "arch": "amd64"}),
            )
        })
        .collect();
    let mounts: Map<String, Value> = (0..30)
        .map(|f| {
            (
                format!("/dev/sd{}{}", (b'a' + (f / 10) as u8) as char, f % 10),
                json!({"kb_size": format!("{}", 1_000_000 + f * 1000), "kb_used": format!("{}", mix(i, 1000 + f as u64) % 1_000_000),
                       "percent_used": format!("{}%", mix(i, 2000 + f as u64) % 100), "mount": format!("/mnt/{f}"),
                       "fs_type": "ext4", "mount_options": ["rw", "relatime"], "uuid": format!("{:032x}", mix(i, 3000 + f as u64)),
                       "label": format!("vol{f}")}),
            )
        })
        .collect();
    let interfaces: Map<String, Value> = (0..4)
        .map(|n| {
            let addresses = json!({
                format!("10.{n}.{}.{}", (i >> 8) & 255, i & 255): {"family": "inet", "prefixlen": "24", "netmask": "255.255.255.0", "scope": "Global"},
                format!("fe80::{:x}", mix(i, n as u64) & 0xffff): {"family": "inet6", "prefixlen": "64", "scope": "Link"},
                format!("52:54:00:{:02x}:{:02x}:{:02x}", n, (i >> 8) & 255, i & 255): {"family": "lladdr"},
            });
            (
                format!("eth{n}"),
                json!({"type": "eth", "number": n.to_string(), "mtu": "1500", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
                       "encapsulation": "Ethernet", "addresses": addresses, "state": "up",
                       "arp": {"10.0.0.1": "52:54:00:00:00:01"}, "routes": [{"destination": "default", "family": "inet", "via": "10.0.0.1"}]}),
            )
        })
        .collect();
    let cpus: Map<String, Value> = (0..4)
        .map(|c| {
            (
                c.to_string(),
                json!({"vendor_id": "GenuineIntel", "family": "6", "model": "85", "model_name": "Intel Xeon",
                       "stepping": "7", "mhz": "2500.000", "cache_size": "36608 KB", "physical_id": "0",
                       "core_id": c.to_string(), "cores": "4", "flags": ["fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic"]}),
            )
        })
        .collect();
    let block: Map<String, Value> = (0..10)
        .map(|b| {
            (
                format!("vd{}", (b'a' + b as u8) as char),
                json!({"size": format!("{}", 20_000_000 + b * 1000), "removable": "0", "model": "QEMU HARDDISK",
                       "rev": "2.5+", "state": "running", "timeout": "30", "vendor": "QEMU", "queue_depth": "32", "rotational": "1", "physical_block_size": "512"}),
            )
        })
        .collect();
    let memory: Map<String, Value> = (0..40)
        .map(|k| {
            (
                format!("field_{k:02}"),
                json!(format!("{}kB", 1000 + k * 17)),
            )
        })
        .collect();
    json!({
        "hostname": name,
        "fqdn": format!("{name}.example.com"),
        "domain": "example.com",
        "ipaddress": ip,
        "macaddress": format!("52:54:00:00:{:02x}:{:02x}", (i >> 8) & 255, i & 255),
        "platform": platform,
        "platform_family": if platform == "centos" { "rhel" } else { "debian" },
        "platform_version": if platform == "centos" { "7.9" } else { "22.04" },
        "os": "linux",
        "os_version": "5.15.0-91-generic",
        "uptime_seconds": 86_400 + run * 1800 + i as u64,
        "ohai_time": 1_700_000_000.5 + run as f64 * 1800.0,
        "kernel": {"name": "Linux", "release": "5.15.0-91-generic", "machine": "x86_64", "modules": modules},
        "packages": packages,
        "filesystem": {"by_device": mounts},
        "network": {"default_interface": "eth0", "default_gateway": "10.0.0.1", "interfaces": interfaces},
        "cpu": {"total": 4, "real": 1, "cores": 4, "cpus": cpus},
        "memory": {"total": "16384000kB", "free": format!("{}kB", mix(i, run) % 16_000_000), "detail": memory},
        "block_device": block,
        "dmi": {"system": {"manufacturer": "QEMU", "product_name": "Standard PC", "serial_number": format!("SN{i:08}")},
                "bios": {"vendor": "SeaBIOS", "version": "1.16"}},
    })
}

/// Leaves of a JSON value.
pub fn leaves(value: &Value) -> usize {
    match value {
        Value::Object(m) => m.values().map(leaves).sum(),
        Value::Array(a) => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_two_thousand_leaves_varied_per_node() {
        let a = automatic(1, "web-1", 0);
        let n = leaves(&a);
        assert!((1_800..2_600).contains(&n), "{n} leaves");
        assert_ne!(a, automatic(2, "web-2", 0));
        assert_ne!(a, automatic(1, "web-1", 1));
        assert_eq!(a, automatic(1, "web-1", 0));
    }
}
