# Installs msgbus on Windows (x64) from a GitHub release, a mirror, or a local folder of release assets.
#
#   irm https://github.com/OWNER/msgbus/releases/latest/download/install.ps1 | iex
#   & ([scriptblock]::Create((irm https://github.com/OWNER/msgbus/releases/latest/download/install.ps1))) -Version v1.2.3
#
# Parameters (or, with `| iex`, the environment variables):
#   -Prefix DIR     install DIR\msgbus.exe            MSGBUS_INSTALL_PREFIX (default %LOCALAPPDATA%\Programs\msgbus)
#   -Version vX.Y.Z that release, not the latest      MSGBUS_INSTALL_VERSION
#   -BaseUrl URL    a mirror or a folder of assets    MSGBUS_INSTALL_BASE (https://, file:///C:/dir or C:\dir)
#   -NoPath         do not add the folder to the user's PATH
# The zip is checked against SHA256SUMS before anything is installed.
param(
  [string]$Prefix = $env:MSGBUS_INSTALL_PREFIX,
  [string]$Version = $env:MSGBUS_INSTALL_VERSION,
  [string]$BaseUrl = $env:MSGBUS_INSTALL_BASE,
  [switch]$NoPath
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue' # Invoke-WebRequest is many times slower with its progress bar
$Repository = 'OWNER/msgbus' # build.ts puts the real owner/name here when it builds a release

function Say([string]$Text) { Write-Host "msgbus install: $Text" }
function Fail([string]$Text) { throw "msgbus install: error: $Text" }

$arch = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
switch ($arch) {
  'AMD64' { }
  'ARM64' { Say 'note: Windows on ARM runs the x64 build under its x64 emulation (Windows 11); there is no arm64 Windows build' }
  default { Fail "no msgbus build for a $arch Windows: Bun, its runtime, needs 64-bit Windows 10 1809 or later" }
}
$target = 'windows-x64'

if ($Version -and $Version -notmatch '^v') { $Version = "v$Version" }
if (-not $BaseUrl) {
  $BaseUrl = if ($Version) { "https://github.com/$Repository/releases/download/$Version" } else { "https://github.com/$Repository/releases/latest/download" }
}
$BaseUrl = $BaseUrl.TrimEnd('/', '\')
if (-not $Prefix) { $Prefix = Join-Path $env:LOCALAPPDATA 'Programs\msgbus' }

function Fetch([string]$Name, [string]$To) {
  if ($BaseUrl -match '^https?://') {
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    Invoke-WebRequest -UseBasicParsing -Uri "$BaseUrl/$Name" -OutFile $To
  } else {
    $dir = if ($BaseUrl -match '^file:') { ([Uri]$BaseUrl).LocalPath } else { $BaseUrl }
    Copy-Item -LiteralPath (Join-Path $dir $Name) -Destination $To
  }
}

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("msgbus-install-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
  $archive = "msgbus-$target.zip"
  Say "installing msgbus $(if ($Version) { $Version } else { '(latest)' }) for $target from $BaseUrl"
  Fetch 'SHA256SUMS' (Join-Path $tmp 'SHA256SUMS')
  $line = Get-Content (Join-Path $tmp 'SHA256SUMS') | Where-Object { ($_ -split '\s+\*?')[1] -eq $archive } | Select-Object -First 1
  if (-not $line) { Fail "SHA256SUMS has no line for $archive" }
  $expected = ($line -split '\s+')[0].ToLower()

  Fetch $archive (Join-Path $tmp $archive)
  $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path $tmp $archive)).Hash.ToLower()
  if ($actual -ne $expected) { Fail "checksum mismatch for ${archive}: SHA256SUMS says $expected, the download is $actual. Nothing was installed." }
  Say "checksum ok: $archive (sha256 $expected)"

  Expand-Archive -LiteralPath (Join-Path $tmp $archive) -DestinationPath (Join-Path $tmp 'unpack')
  $exe = Join-Path $tmp "unpack\msgbus-$target\msgbus.exe"
  if (-not (Test-Path -LiteralPath $exe)) { Fail "$archive does not hold msgbus-$target\msgbus.exe" }

  New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
  $dest = Join-Path $Prefix 'msgbus.exe'
  # A running msgbus.exe cannot be overwritten, but it can be renamed out of the way.
  if (Test-Path -LiteralPath $dest) { Move-Item -Force -LiteralPath $dest -Destination "$dest.old" -ErrorAction SilentlyContinue }
  Copy-Item -LiteralPath $exe -Destination $dest
  Remove-Item -Force -LiteralPath "$dest.old" -ErrorAction SilentlyContinue
  Say "installed $dest"
  Say "msgbus --version: $(& $dest --version)"

  $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
  if (-not $NoPath -and -not (($userPath -split ';') -contains $Prefix)) {
    $newPath = if ($userPath) { "$userPath;$Prefix" } else { $Prefix }
    [Environment]::SetEnvironmentVariable('Path', $newPath, 'User')
    $env:Path = "$env:Path;$Prefix"
    Say "added $Prefix to your user PATH (new terminals see it)"
  }
} finally {
  Remove-Item -Recurse -Force -LiteralPath $tmp -ErrorAction SilentlyContinue
}
