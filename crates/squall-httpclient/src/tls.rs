//! https: which TLS configuration a request uses, and the handshake on a new
//! connection (directly, or through a proxy's CONNECT tunnel). Only with the `tls`
//! feature.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use squall_ioloop::with_timeout;
use squall_iostream::IoStream;
use squall_tls::rustls;
use squall_tls::{TlsClientConfig, TlsStreamExt};

use crate::error::{HttpClientError, TimeoutPhase};
use crate::request::HttpRequest;

/// Which trust a request asks for, worked out at fetch time ([`TlsState::trust`]); it
/// is also part of the pool's key, so that a connection made under one trust never
/// serves a request asking for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Trust {
    /// The client's configuration (the system's roots unless set), with its generation:
    /// each [`TlsState::set_default`] starts a new one, so that a connection made under
    /// an older default never serves a request the newer one governs.
    Default(u64),
    /// The CA certificates of a PEM file (Tornado's `ca_certs`).
    CaFile(String),
    /// No verification at all (Tornado's `validate_cert=False`).
    Insecure,
    /// A configuration given with the request, told apart by its identity.
    Custom(ConfigId),
}

/// A request's own TLS configuration in a pool key: compared by identity (the same
/// `Arc`), and held, so that while a connection made under it is kept no other
/// configuration can be created at its address and pass for it.
#[derive(Debug, Clone)]
pub(crate) struct ConfigId(Arc<rustls::ClientConfig>);

impl PartialEq for ConfigId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ConfigId {}

impl std::hash::Hash for ConfigId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// The certificate a request presents when the server asks for one (Tornado's
/// `client_cert` and `client_key`): PEM files, the key in the certificate's file when
/// no key file is named. Part of the pool's key too: a connection authenticated as one
/// client never serves a request made as another, or as nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Identity {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

/// The configurations the client made once and keeps.
#[derive(Default)]
pub(crate) struct TlsState {
    default: RefCell<Option<TlsClientConfig>>,
    /// The generation of `default`: how many times it was set.
    generation: Cell<u64>,
    insecure: RefCell<Option<TlsClientConfig>>,
    ca_files: RefCell<Vec<(String, TlsClientConfig)>>,
    /// The configurations that present a client certificate, by the trust they were
    /// made from and the files of the certificate: made once, so that their
    /// connections can resume each other's sessions (rustls resumes only between
    /// configurations with the same certificate resolver).
    with_cert: RefCell<Vec<((Trust, Identity), TlsClientConfig)>>,
}

impl TlsState {
    /// Use `config` for requests that name no trust of their own.
    /// Connections made under the previous default are stale from now on
    /// ([`is_current`](Self::is_current)).
    pub(crate) fn set_default(&self, config: TlsClientConfig) {
        *self.default.borrow_mut() = Some(config);
        self.generation.set(self.generation.get() + 1);
        (self.with_cert.borrow_mut()).retain(|((trust, _), _)| !matches!(trust, Trust::Default(_)));
    }

    /// The trust `req` asks for, whatever the order of its setters: its `tls_config` (a
    /// whole configuration) first; else none under `validate_cert(false)`; else its
    /// `ca_certs` file; else the client's default of now. Tornado's
    /// `_get_ssl_options` reads `validate_cert` and `ca_certs` apart too.
    pub(crate) fn trust(&self, req: &HttpRequest) -> Trust {
        if let Some(config) = &req.tls_config {
            Trust::Custom(ConfigId(config.rustls().clone()))
        } else if !req.validate_cert {
            Trust::Insecure
        } else if let Some(path) = &req.ca_certs {
            Trust::CaFile(path.clone())
        } else {
            Trust::Default(self.generation.get())
        }
    }

    /// Whether a connection made under `trust` may still serve requests: not if it was
    /// made under a default that has been replaced since.
    pub(crate) fn is_current(&self, trust: &Trust) -> bool {
        match trust {
            Trust::Default(generation) => *generation == self.generation.get(),
            _ => true,
        }
    }

    fn config(
        &self,
        trust: &Trust,
        custom: Option<&TlsClientConfig>,
    ) -> Result<TlsClientConfig, HttpClientError> {
        let tls_err = |e: squall_tls::TlsError| HttpClientError::invalid(format!("TLS: {e}"));
        match trust {
            Trust::Custom(_) => custom
                .cloned()
                .ok_or_else(|| HttpClientError::invalid("TLS: no configuration")),
            // A default set since the key was made serves; the connection is then not
            // kept (`is_current`).
            Trust::Default(_) => {
                if let Some(c) = &*self.default.borrow() {
                    return Ok(c.clone());
                }
                let c = TlsClientConfig::with_system_roots().map_err(tls_err)?;
                *self.default.borrow_mut() = Some(c.clone());
                Ok(c)
            }
            Trust::Insecure => {
                if let Some(c) = &*self.insecure.borrow() {
                    return Ok(c.clone());
                }
                let c = TlsClientConfig::accept_any_certificate().map_err(tls_err)?;
                *self.insecure.borrow_mut() = Some(c.clone());
                Ok(c)
            }
            Trust::CaFile(path) => {
                if let Some((_, c)) = self.ca_files.borrow().iter().find(|(p, _)| p == path) {
                    return Ok(c.clone());
                }
                let c = TlsClientConfig::with_ca_file(path).map_err(tls_err)?;
                self.ca_files.borrow_mut().push((path.clone(), c.clone()));
                Ok(c)
            }
        }
    }

    /// The configuration of `trust` (and `custom`) presenting `identity`'s certificate,
    /// made at its first use and kept.
    fn config_with_cert(
        &self,
        trust: &Trust,
        custom: Option<&TlsClientConfig>,
        identity: &Identity,
    ) -> Result<TlsClientConfig, HttpClientError> {
        let found = self
            .with_cert
            .borrow()
            .iter()
            .find_map(|((t, i), c)| (t == trust && i == identity).then(|| c.clone()));
        if let Some(config) = found {
            return Ok(config);
        }
        let Some(cert) = &identity.cert else {
            return Err(HttpClientError::invalid(
                "TLS: client_key without client_cert",
            ));
        };
        let key = squall_tls::load_certified_key(cert, identity.key.as_ref().unwrap_or(cert))
            .map_err(|e| HttpClientError::invalid(format!("TLS: client certificate: {e}")))?;
        let config = self.config(trust, custom)?.with_client_cert(key);
        (self.with_cert.borrow_mut()).push(((trust.clone(), identity.clone()), config.clone()));
        Ok(config)
    }

    /// Make `stream` the client side of TLS to `host` (presenting `identity`'s
    /// certificate if the server asks for one) and finish the handshake within
    /// `timeout` (the connect phase's time).
    pub(crate) async fn handshake(
        &self,
        stream: &IoStream,
        host: &str,
        trust: &Trust,
        custom: Option<&TlsClientConfig>,
        identity: Option<&Identity>,
        timeout: Duration,
    ) -> Result<(), HttpClientError> {
        let config = match identity {
            Some(identity) => self.config_with_cert(trust, custom, identity)?,
            None => self.config(trust, custom)?,
        };
        stream
            .start_tls_client(&config, host)
            .map_err(|e| HttpClientError::invalid(format!("TLS: {e}")))?;
        match with_timeout(timeout, stream.wait_for_handshake()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HttpClientError::Stream(e)),
            Err(_) => {
                stream.close();
                Err(HttpClientError::Timeout(TimeoutPhase::Connect))
            }
        }
    }
}
