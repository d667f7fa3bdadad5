#!/usr/bin/python3
"""Run a real Swift server or daemon against a swift.conf that is not /etc/swift/swift.conf.

    FRAGMEND_SWIFT_CONF=/tmp/sbx/etc/swift.conf \\
        /usr/bin/python3 swift-launch.py object-server /tmp/sbx/etc/object-server/0.conf -v
    FRAGMEND_SWIFT_CONF=... /usr/bin/python3 swift-launch.py object-reconstructor <conf> --once -v
    FRAGMEND_SWIFT_CONF=... /usr/bin/python3 swift-launch.py recon object -R --swiftdir=/tmp/sbx/etc

Swift reads the hash prefix/suffix and the storage policies from the module constant
swift.common.utils.SWIFT_CONF_FILE, once, when swift.common.utils and
swift.common.storage_policy are first imported; no server option moves it. So the constant is
reassigned and both are reloaded before any server module is imported, and the entry point is
then called exactly as Debian's /usr/bin/swift-<name> script calls it.

Other environment:
    FRAGMEND_SWIFT_SYSLOG=1   keep Swift's syslog handler. By default it is replaced by one that
                              drops records: without /dev/log Swift falls back to UDP port 514,
                              and the console log (-v, on stderr) is what the sandbox keeps.

This file is also imported by swift-diskfile.py for redirect_swift_conf().
"""
import os
import sys


def redirect_swift_conf(path=None):
    """Point Swift at `path` (default $FRAGMEND_SWIFT_CONF); returns the absolute path."""
    path = path or os.environ.get('FRAGMEND_SWIFT_CONF')
    if not path:
        sys.exit('swift-launch: FRAGMEND_SWIFT_CONF is not set')
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        sys.exit('swift-launch: FRAGMEND_SWIFT_CONF=%s is not a file' % path)
    # storage_policy parses swift.conf when it is imported: if it already is, it has read
    # /etc/swift/swift.conf and some module may hold on to those policies.
    for mod in ('swift.common.storage_policy', 'swift.common.constraints'):
        if mod in sys.modules:
            raise RuntimeError('%s was imported before swift.conf was redirected' % mod)

    from swift.common import utils
    utils.SWIFT_CONF_FILE = path
    # utils already read the prefix/suffix of /etc/swift/swift.conf (if there was one) at import;
    # validate_hash_conf only reads the file again when both are empty.
    utils.HASH_PATH_PREFIX = b''
    utils.HASH_PATH_SUFFIX = b''
    utils.validate_hash_conf()

    from swift.common import constraints, storage_policy
    # Importing them just read `path`; reloading again makes that independent of import order.
    storage_policy.reload_storage_policies()
    constraints.reload_constraints()

    if os.environ.get('FRAGMEND_SWIFT_SYSLOG') != '1':
        _drop_syslog(utils)
    return path


def _drop_syslog(utils):
    import logging

    class _NoSyslog(logging.Handler):
        def __init__(self, *args, **kwargs):
            logging.Handler.__init__(self)

        def emit(self, record):
            pass

    utils.ThreadSafeSysLogHandler = _NoSyslog


# name -> how /usr/bin/swift-<name> starts it
def _wsgi(app_section, with_global_conf_callback=False):
    def main():
        from swift.common.utils import parse_options
        from swift.common.wsgi import run_wsgi
        conf_file, options = parse_options()
        if with_global_conf_callback:
            from swift.obj import server
            options['global_conf_callback'] = server.global_conf_callback
        sys.exit(run_wsgi(conf_file, app_section, **options))
    return main


def _daemon(module, cls, extra_options):
    def main():
        import importlib
        from optparse import OptionParser
        from swift.common.daemon import run_daemon
        from swift.common.utils import parse_options
        klass = getattr(importlib.import_module(module), cls)
        parser = OptionParser("%prog CONFIG [options]")
        for short, long_, help_ in extra_options:
            parser.add_option(short, long_, help=help_)
        conf_file, options = parse_options(parser=parser, once=True)
        run_daemon(klass, conf_file, **options)
    return main


_DEVICES = ('-d', '--devices', 'Only these devices (comma-separated); needs --once.')
_PARTITIONS = ('-p', '--partitions', 'Only these partitions (comma-separated); needs --once.')
_POLICIES = ('-i', '--policies', 'Only these policy indices (comma-separated); needs --once.')

ENTRY_POINTS = {
    'object-server': _wsgi('object-server', with_global_conf_callback=True),
    'proxy-server': _wsgi('proxy-server'),
    'account-server': _wsgi('account-server'),
    'container-server': _wsgi('container-server'),
    'object-reconstructor': _daemon('swift.obj.reconstructor', 'ObjectReconstructor',
                                    [_DEVICES, _PARTITIONS]),
    'object-replicator': _daemon('swift.obj.replicator', 'ObjectReplicator',
                                 [_DEVICES, _PARTITIONS, _POLICIES]),
    'object-updater': _daemon('swift.obj.updater', 'ObjectUpdater', []),
    'object-auditor': _daemon('swift.obj.auditor', 'ObjectAuditor', [
        ('-z', '--zero_byte_fps', 'Audit only zero byte files at specified files/sec'),
        ('-d', '--devices', 'Audit only given devices. Comma-separated list')]),
}


def _recon():
    from swift.cli.recon import main as recon_main
    sys.exit(recon_main())


ENTRY_POINTS['recon'] = _recon


def main(argv):
    if len(argv) < 2 or argv[1] not in ENTRY_POINTS:
        sys.exit('usage: FRAGMEND_SWIFT_CONF=<swift.conf> %s {%s} CONFIG [options]'
                 % (os.path.basename(argv[0]), '|'.join(sorted(ENTRY_POINTS))))
    redirect_swift_conf()
    name = argv[1]
    # parse_options reads sys.argv[1:] and names itself after sys.argv[0].
    sys.argv = ['swift-' + name] + argv[2:]
    ENTRY_POINTS[name]()


if __name__ == '__main__':
    main(sys.argv)
