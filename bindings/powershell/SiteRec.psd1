# Module manifest of SiteRec: PowerShell cmdlets over libsiterec (a binary module:
# SiteRec.dll holds the P/Invoke layer and the cmdlets). build.sh puts this file
# next to SiteRec.dll; libsiterec.so.1 is found through $env:SITEREC_LIBRARY, the
# meson build tree the module was built in, or the system's loader.
@{
    RootModule           = 'SiteRec.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '4f6b2d1e-8c3a-4e57-9b0d-2a7c51e9f3b4'
    Author               = 'libsiterec'
    Description          = 'Disaster recovery of virtual machines (site-recovery style) over libsiterec'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    CmdletsToExport      = @(
        'Enable-SiteRecReplication', 'Start-SiteRecReplicationCycle', 'Get-SiteRecRecoveryPoint',
        'Start-SiteRecTestFailover', 'Stop-SiteRecTestFailover', 'Start-SiteRecFailover',
        'Complete-SiteRecFailover', 'Stop-SiteRecFailover', 'Start-SiteRecFailback',
        'Enable-SiteRecReverseReplication', 'Start-SiteRecRecoveryPlan', 'Get-SiteRecStatus'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
}
