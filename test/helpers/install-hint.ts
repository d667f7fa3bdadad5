// The one command that installs everything the real-PyECLib and real-Swift suites need
// (the same list .ci/run installs).
export const INSTALL_HINT =
  'apt-get install -y python3-pyeclib liberasurecode1 libisal2 libjerasure2 libgf-complete1 swift swift-object swift-proxy swift-account swift-container python3-swift';
