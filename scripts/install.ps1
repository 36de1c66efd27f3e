# Installs echod on Windows from a GitHub release, verified against SHA256SUMS.
#
#   irm https://github.com/echod/echod/releases/latest/download/install.ps1 | iex
#   .\install.ps1 [-Version 0.1.0] [-Prefix "C:\Program Files\echod"] [-Service] [-ServeArgs @('--port','7007')]
#
# -Service installs and starts echod as a Windows service (run as Administrator).
# $env:ECHOD_REPO (owner/name) or $env:ECHOD_BASE_URL (a mirror of .../releases) say where from.
param(
  [string]$Version = "latest",
  [string]$Prefix = (Join-Path $env:ProgramFiles "echod"),
  [switch]$Service,
  [string[]]$ServeArgs = @()
)
$ErrorActionPreference = "Stop"
$repo = if ($env:ECHOD_REPO) { $env:ECHOD_REPO } else { "echod/echod" }
$base = if ($env:ECHOD_BASE_URL) { $env:ECHOD_BASE_URL } else { "https://github.com/$repo/releases" }

if ([Environment]::Is64BitOperatingSystem -eq $false -or $env:PROCESSOR_ARCHITECTURE -ne "AMD64") {
  throw "unsupported architecture '$($env:PROCESSOR_ARCHITECTURE)': echod for Windows is built for x86_64"
}
$target = "x86_64-pc-windows-msvc"

if ($Version -eq "latest") {
  $response = Invoke-WebRequest -Uri "$base/latest" -MaximumRedirection 0 -ErrorAction SilentlyContinue -UseBasicParsing
  $location = $response.Headers.Location
  if (-not $location) { throw "cannot tell the latest version from $base/latest" }
  $Version = ($location -split "/")[-1]
}
$Version = $Version.TrimStart("v")
$name = "echod-$Version-$target"
$work = Join-Path ([IO.Path]::GetTempPath()) ("echod-install-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $work | Out-Null
try {
  Write-Output "downloading echod $Version for $target"
  Invoke-WebRequest -Uri "$base/download/v$Version/$name.zip" -OutFile "$work\$name.zip" -UseBasicParsing
  Invoke-WebRequest -Uri "$base/download/v$Version/SHA256SUMS" -OutFile "$work\SHA256SUMS" -UseBasicParsing
  $line = Get-Content "$work\SHA256SUMS" | Where-Object { ($_ -split "\s+")[1] -in @("$name.zip", "*$name.zip") }
  if (-not $line) { throw "SHA256SUMS has no entry for $name.zip; refusing to install" }
  $expected = ($line -split "\s+")[0].ToLower()
  $actual = (Get-FileHash -Algorithm SHA256 "$work\$name.zip").Hash.ToLower()
  if ($actual -ne $expected) {
    throw "checksum mismatch for $name.zip (expected $expected, got $actual); refusing to install"
  }
  Expand-Archive -Path "$work\$name.zip" -DestinationPath $work
  New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
  # A running service holds echod.exe open: stop it to replace the file (it drains), start it after.
  $running = Get-Service -Name echod -ErrorAction SilentlyContinue | Where-Object { $_.Status -eq "Running" }
  if ($running) { Stop-Service -Name echod }
  Copy-Item "$work\$name\echod.exe" (Join-Path $Prefix "echod.exe") -Force
  Write-Output "installed echod $Version to $(Join-Path $Prefix 'echod.exe')"
  $machinePath = [Environment]::GetEnvironmentVariable("Path", "Machine")
  if (($machinePath -split ";") -notcontains $Prefix) {
    [Environment]::SetEnvironmentVariable("Path", "$machinePath;$Prefix", "Machine")
    Write-Output "added $Prefix to the system PATH (new shells will see it)"
  }
  if ($Service) {
    & (Join-Path $Prefix "echod.exe") service install -- @ServeArgs
    if ($LASTEXITCODE -ne 0) { throw "echod service install failed" }
  } elseif ($running) {
    Start-Service -Name echod
    Write-Output "restarted the echod service"
  }
} finally {
  Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}
