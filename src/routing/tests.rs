use super::*;

const CONFIG: &str = r#"
default_pool = "default"
[pools.default]
[pools.shop]
[pools.api]
[pools.any-api]
[pools.admin8080]
[pools.wild]
[pools.deep]

[[routes]]
host = "Shop.Example.com"
pool = "shop"
[[routes]]
host = "shop.example.com"
path_prefix = "/api/"
pool = "api"
[[routes]]
host = "shop.example.com:8080"
pool = "admin8080"
[[routes]]
host = "*.example.com"
pool = "wild"
[[routes]]
host = "*.eu.example.com"
pool = "deep"
[[routes]]
path_prefix = "/api/"
pool = "any-api"
"#;

fn table() -> RouteTable {
    let config = Config::parse(CONFIG).unwrap();
    let cluster = Cluster::default();
    cluster.apply_config(&config);
    RouteTable::build(&config, &cluster)
}

fn route(t: &RouteTable, host: Option<&str>, server_name: &str, path: &str) -> Option<String> {
    let key = RequestKey {
        host: host.map(str::as_bytes),
        server_name: Some(server_name.as_bytes()),
        server_port: Some(b"80"),
        path: path.as_bytes(),
    };
    t.route(&key).map(|p| p.name.to_string())
}

#[test]
fn exact_host_case_insensitive_with_port_ignored() {
    let t = table();
    for host in [
        "shop.example.com",
        "SHOP.example.COM",
        "shop.example.com:443",
        "shop.example.com.",
    ] {
        assert_eq!(
            route(&t, Some(host), "_", "/").as_deref(),
            Some("shop"),
            "{host}"
        );
    }
}

#[test]
fn a_route_naming_a_port_needs_that_port() {
    let t = table();
    assert_eq!(
        route(&t, Some("shop.example.com:8080"), "_", "/").as_deref(),
        Some("admin8080")
    );
    // Debian's nginx strips the port from $host: SERVER_PORT then tells.
    let key = RequestKey {
        host: Some(b"shop.example.com"),
        server_name: None,
        server_port: Some(b"8080"),
        path: b"/",
    };
    assert_eq!(t.route(&key).map(|p| &*p.name), Some("admin8080"));
}

#[test]
fn longest_path_prefix_wins_within_a_host() {
    let t = table();
    assert_eq!(
        route(&t, Some("shop.example.com"), "_", "/api/v1/items").as_deref(),
        Some("api")
    );
    assert_eq!(
        route(&t, Some("shop.example.com"), "_", "/apix").as_deref(),
        Some("shop")
    );
}

#[test]
fn wildcards_match_subdomains_longest_suffix_first() {
    let t = table();
    assert_eq!(
        route(&t, Some("blog.example.com"), "_", "/").as_deref(),
        Some("wild")
    );
    assert_eq!(
        route(&t, Some("a.b.example.com"), "_", "/").as_deref(),
        Some("wild")
    );
    assert_eq!(
        route(&t, Some("paris.eu.example.com"), "_", "/").as_deref(),
        Some("deep")
    );
    // As nginx: *.example.com does not match example.com itself.
    assert_eq!(
        route(&t, Some("example.com"), "_", "/").as_deref(),
        Some("default")
    );
}

#[test]
fn host_less_rules_then_default() {
    let t = table();
    assert_eq!(
        route(&t, Some("other.org"), "_", "/api/x").as_deref(),
        Some("any-api")
    );
    assert_eq!(
        route(&t, Some("other.org"), "_", "/").as_deref(),
        Some("default")
    );
}

#[test]
fn server_name_is_used_without_a_host_header() {
    let t = table();
    assert_eq!(
        route(&t, None, "shop.example.com", "/").as_deref(),
        Some("shop")
    );
    assert_eq!(
        route(&t, Some(""), "shop.example.com", "/").as_deref(),
        Some("shop")
    );
}

#[test]
fn no_default_pool_means_no_route() {
    let config = Config::parse(
        "default_pool = \"\"\n[pools.a]\n[[routes]]\nhost = \"a.test\"\npool = \"a\"\n",
    )
    .unwrap();
    let cluster = Cluster::default();
    cluster.apply_config(&config);
    let t = RouteTable::build(&config, &cluster);
    assert_eq!(route(&t, Some("a.test"), "_", "/").as_deref(), Some("a"));
    assert_eq!(route(&t, Some("b.test"), "_", "/"), None);
    // Over-long hosts never match (and never allocate).
    let long = "x".repeat(300);
    assert_eq!(route(&t, Some(&long), "_", "/"), None);
}

#[test]
fn subscription_keys_route_by_host_rules_only_and_dynamic_routes_come_last() {
    let config = Config::parse(CONFIG).unwrap();
    let cluster = Cluster::default();
    cluster.apply_config(&config);
    let settings = crate::cluster::PoolSettings::default;
    cluster.add_dynamic_pool("new.test", "new.test", settings());
    // A dynamic route for a configured host loses to the configured route.
    cluster.add_dynamic_pool("shop.example.com", "shadow", settings());
    let t = RouteTable::build(&config, &cluster);
    let key = |k: &str| t.route_host(k.as_bytes()).map(|p| p.name.to_string());
    assert_eq!(key("new.test").as_deref(), Some("new.test"));
    assert_eq!(key("NEW.test:8000").as_deref(), Some("new.test"));
    assert_eq!(key("shop.example.com").as_deref(), Some("shop"));
    assert_eq!(key("shop.example.com:8080").as_deref(), Some("admin8080"));
    assert_eq!(key("a.eu.example.com").as_deref(), Some("deep"));
    assert_eq!(key("elsewhere.test"), None, "never the default pool");
    assert_eq!(
        route(&t, Some("new.test"), "_", "/x").as_deref(),
        Some("new.test"),
        "requests follow the dynamic route"
    );
}
