//! Free TCP ports on 127.0.0.1 for the servers a test or a local stack starts.

use std::{io, net::TcpListener};

/// Ports that were free a moment ago on 127.0.0.1, each distinct from the others picked by the
/// same picker: every port is held (its listener kept open) until the picker is dropped, so
/// the kernel cannot hand one port out twice. A port picked and released at once, then another,
/// can be the same one: two listeners of one broker on one port stop it at start, two services
/// told the same `--listen` address make one of them fail. Pick every port a start needs from
/// one picker and drop it just before the programs bind them (between the drop and the bind
/// another process may still take one: that window is what is left).
///
/// ```
/// let mut free = test_support::FreePorts::default();
/// let (a, b) = (free.pick()?, free.pick()?);
/// assert_ne!(a, b);
/// drop(free);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct FreePorts {
    held: Vec<TcpListener>,
}

impl FreePorts {
    /// Another free port, distinct from those this picker gave before; held until the picker
    /// is dropped.
    ///
    /// # Errors
    /// When no port can be bound on 127.0.0.1.
    pub fn pick(&mut self) -> io::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        self.held.push(listener);
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::FreePorts;

    #[test]
    fn one_picker_never_gives_a_port_twice() {
        let mut free = FreePorts::default();
        let ports: Vec<u16> = (0..512).map(|_| free.pick().unwrap()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ports.len(),
            "a port picked twice: {ports:?}"
        );
    }
}
