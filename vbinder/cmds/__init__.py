"""Android's binder commands on vbinder, as AOSP's ``frameworks/native/cmds`` has them.

``service`` (:mod:`.service`, cmds/service/service.cpp), ``dumpsys`` (:mod:`.dumpsys`,
cmds/dumpsys/dumpsys.cpp with libbinderdebug) and ``ping`` (:mod:`.ping`): the same arguments,
the same output and exit codes, through ``vbinder_client`` on a vbinder mount or a real binder.
"""
