//! The deployment files in `infra/` parse, set only settings the binary knows (with values it
//! accepts), and agree with each other and with the server (ports, probe paths, selectors).

use std::collections::BTreeMap;
use std::fs;

use ghosttrack::settings::Settings;
use ghosttrack_tests::{spawn_app, workspace_root};
use serde_yaml_ng::Value;

fn read(path: &str) -> String {
    fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut v = value;
    for key in path {
        v = match key.parse::<usize>() {
            Ok(i) if v.is_sequence() => &v[i],
            _ => &v[*key],
        };
    }
    v.as_str().unwrap_or_else(|| panic!("no string at {path:?}"))
}

/// Loads the settings exactly as the binary would from this environment: every GHOSTTRACK_*
/// variable must name a setting and every value must be valid.
fn assert_binary_accepts(file: &str, env: &BTreeMap<String, String>) -> Settings {
    assert!(!env.is_empty(), "{file} sets no GHOSTTRACK_* variable");
    let loaded = Settings::load_from(None, env.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(loaded.unknown_env.is_empty(), "{file} sets variables the binary does not know: {:?}", loaded.unknown_env);
    loaded.settings
}

fn ghosttrack_vars(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    pairs.into_iter().filter(|(k, _)| k.starts_with("GHOSTTRACK_")).collect()
}

/// `ENV A=1 \ B=2` instructions of a Dockerfile (continuation lines joined).
fn dockerfile_env(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|rest| rest.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned())))
        .collect()
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_sets_known_settings() {
    let text = read("infra/Dockerfile");
    assert!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2, "multi-stage build");
    assert!(text.contains("--locked"), "the image builds from Cargo.lock");
    let user = text.lines().rev().find_map(|l| l.strip_prefix("USER ")).expect("a USER instruction");
    assert!(!user.starts_with('0') && !user.starts_with("root"), "runs as non-root, not {user}");
    let settings = assert_binary_accepts("infra/Dockerfile", &ghosttrack_vars(dockerfile_env(&text)));
    assert_eq!(settings.listen.port(), 8080);
    assert!(text.contains("EXPOSE 8080"));
}

#[test]
fn compose_runs_the_app_with_postgres_redis_and_an_smtp_catcher() {
    let compose = yaml("infra/compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    for name in ["ghosttrack", "postgres", "redis", "smtp"] {
        assert!(services.contains_key(name), "compose.yaml has no `{name}` service");
    }
    let env = compose["services"]["ghosttrack"]["environment"].as_mapping().expect("environment map");
    let env = ghosttrack_vars(
        env.iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().expect("quoted value").to_owned())),
    );
    let settings = assert_binary_accepts("infra/compose.yaml", &env);
    assert!(settings.database_url().is_postgres());
    assert!(settings.database_url().expose().contains("@postgres:5432/"), "points at the compose service");
    assert_eq!(str_at(&compose, &["services", "ghosttrack", "build", "dockerfile"]), "infra/Dockerfile");
}

#[test]
fn systemd_unit_sets_known_settings_and_is_sandboxed() {
    let text = read("infra/systemd/ghosttrack.service");
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(text.contains(section), "missing {section}");
    }
    let env = ghosttrack_vars(
        text.lines()
            .filter_map(|l| l.strip_prefix("Environment="))
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))),
    );
    assert_binary_accepts("infra/systemd/ghosttrack.service", &env);
    for hardening in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=ghosttrack"] {
        assert!(text.contains(hardening), "missing {hardening}");
    }
    assert!(text.contains("ExecStart=/usr/local/bin/ghosttrack serve"));
}

#[tokio::test]
async fn kubernetes_manifests_agree_with_each_other_and_with_the_server() {
    let kustomization = yaml("infra/k8s/kustomization.yaml");
    let listed: Vec<&str> =
        kustomization["resources"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mut on_disk: Vec<String> = fs::read_dir(workspace_root().join("infra/k8s"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk, "kustomization.yaml lists every manifest");

    let config = yaml("infra/k8s/configmap.yaml");
    let deployment = yaml("infra/k8s/deployment.yaml");
    assert_eq!(str_at(&deployment, &["kind"]), "Deployment");
    let pod = &deployment["spec"]["template"];
    let pod_labels = pod["metadata"]["labels"].as_mapping().unwrap();
    let container = &pod["spec"]["containers"][0];

    // Environment: the ConfigMap (envFrom) plus explicit variables; secrets get a valid stand-in.
    assert_eq!(str_at(container, &["envFrom", "0", "configMapRef", "name"]), str_at(&config, &["metadata", "name"]));
    let mut env = ghosttrack_vars(
        config["data"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().expect("quoted value").to_owned())),
    );
    for var in container["env"].as_sequence().unwrap() {
        let name = str_at(var, &["name"]).to_owned();
        let value = match var["value"].as_str() {
            Some(v) => v.to_owned(),
            None if name == "GHOSTTRACK_DATABASE_URL" => "postgres://ghosttrack@db.internal:5432/ghosttrack".into(),
            None => "from-a-secret".into(),
        };
        env.insert(name, value);
    }
    let settings = assert_binary_accepts("infra/k8s", &env);
    assert!(settings.database_url().is_postgres(), "several pods need PostgreSQL, not SQLite");

    // Ports and probes line up with what the binary listens on and serves.
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(port, u64::from(settings.listen.port()));
    assert_eq!(str_at(container, &["readinessProbe", "httpGet", "path"]), "/ready");
    assert_eq!(str_at(container, &["livenessProbe", "httpGet", "path"]), "/health");
    let app = spawn_app().await;
    for path in ["/ready", "/health"] {
        let status = reqwest::get(app.url(path)).await.unwrap().status();
        assert_eq!(status, 200, "{path} on a healthy server");
    }
    app.stop().await;

    // Selectors select the pods; the autoscaler scales this Deployment.
    let deployment_name = str_at(&deployment, &["metadata", "name"]);
    for (file, selector) in [
        ("service.yaml", &["spec", "selector"][..]),
        ("pdb.yaml", &["spec", "selector", "matchLabels"][..]),
        ("deployment.yaml", &["spec", "selector", "matchLabels"][..]),
    ] {
        let doc = yaml(&format!("infra/k8s/{file}"));
        let mut v = &doc;
        for key in selector {
            v = &v[*key];
        }
        for (k, val) in v.as_mapping().unwrap_or_else(|| panic!("{file} has a selector")) {
            assert_eq!(pod_labels.get(k), Some(val), "{file} selects {k:?}={val:?}, which the pods do not carry");
        }
    }
    let hpa = yaml("infra/k8s/hpa.yaml");
    assert_eq!(str_at(&hpa, &["spec", "scaleTargetRef", "kind"]), "Deployment");
    assert_eq!(str_at(&hpa, &["spec", "scaleTargetRef", "name"]), deployment_name);
    let service = yaml("infra/k8s/service.yaml");
    assert_eq!(str_at(&service, &["spec", "ports", "0", "targetPort"]), str_at(container, &["ports", "0", "name"]));
}
