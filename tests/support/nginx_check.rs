//! `nginx -t` on a site file meant for nginx's http {} block (as Debian's sites-enabled/ are).

use std::path::Path;
use std::process::Command;

use super::command::{run, said};
use super::programs::find_program;

/// Wraps `site` in an http {} block, with Debian's uwsgi_params beside it, and asserts that
/// `nginx -t` accepts it without a warning.
pub fn nginx_t_accepts(site: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy("/etc/nginx/uwsgi_params", d.join("uwsgi_params"))
        .expect("Debian's /etc/nginx/uwsgi_params (nginx-common)");
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
         http {{\n    access_log {d}/access.log;\n    include {site};\n}}\n",
        d = d.display(),
        site = site.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let out = run(Command::new(find_program("nginx"))
        .arg("-t")
        .arg("-p")
        .arg(d)
        .arg("-e")
        .arg(d.join("error.log"))
        .arg("-c")
        .arg(d.join("nginx.conf")));
    let text = said(&out);
    assert!(
        out.status.success() && text.contains("test is successful") && !text.contains("[warn]"),
        "nginx -t on {}: {text}",
        site.display()
    );
}
