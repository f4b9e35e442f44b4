//! A minimal HTTP/1.0 GET for tests that talk to servers inside a lab namespace (the
//! exporter, Prometheus): it enters the namespace on a thread of its own, so the test process
//! stays where it is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::netns::in_netns;

/// An HTTP/1.0 response: status code, headers (lowercased names) and body.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `path` from `addr` inside namespace `ns` (HTTP/1.0, so the body ends at close).
pub fn get(ns: &str, addr: &str, path: &str, accept: Option<&str>) -> Response {
    in_netns(ns, || {
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Response {
            status: status.parse().unwrap(),
            headers,
            body: body.to_owned(),
        }
    })
}
