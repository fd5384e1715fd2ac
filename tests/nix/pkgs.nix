# A stand-in for the parts of nixpkgs that machci's default.nix calls, so tests can build the
# generated expression offline. It mirrors nixpkgs where a difference would hide a failure users
# meet (see tests/nix/README.md for the source files each rule comes from):
# - argument sets are closed where nixpkgs' are closed (fetchurl, python.override,
#   python.buildEnv.override, dockerTools.streamLayeredImage, rWrapper.override) and open where
#   they are open (buildPythonPackage, mkShell);
# - every dependency, build-system entry and input is an input of the derivation, so a Python
#   dependency cycle is an infinite recursion here as it is in nixpkgs;
# - the builder runs the equivalents of pythonRuntimeDepsCheckHook, pythonMetadataCheckHook,
#   pypa/build's dependency check, autoPatchelf's missing-library check, and buildEnv's
#   collision check.
{
  hostPython,
  system ? builtins.currentSystem,
  # patchelf on the host, for the autoPatchelf stand-in (null: ELF files cannot be patched).
  patchelf ? null,
  # nixpkgs' own Python packages (python-packages.nix), as an overlay of every interpreter's set.
  pythonPackages ? (final: prev: { }),
  # The versions of the host's build tools the stand-in's nixpkgs packages copy (name: version).
  hostTools ? { },
  # lib.version of the nixpkgs this plays (lib/trivial.nix: release + versionSuffix).
  libVersion ? "26.11pre-git",
}:
let
  inherit (builtins)
    all
    concatLists
    filter
    genericClosure
    isBool
    isFunction
    match
    removeAttrs
    stringLength
    toJSON
    ;

  fix =
    f:
    let
      x = f x;
    in
    x;
  extends =
    overlay: f: final:
    let
      prev = f final;
    in
    prev // overlay final prev;

  # A derivation whose builder is a Python script run by the host interpreter; the build's
  # PYTHONPATH is for the build, not for the builder itself (-E).
  pythonBuilt =
    script: attrs:
    derivation (
      {
        inherit system;
        builder = hostPython;
        args = [
          "-E"
          script
        ];
      }
      // attrs
    );

  # Builds run without a sandbox here, so the host's coreutils stand in for stdenv's.
  shellBuilt =
    name: script:
    derivation {
      inherit name system;
      PATH = "/usr/bin:/bin";
      builder = "/bin/sh";
      args = [
        "-c"
        script
      ];
    };

  # trivial-builders.nix's runCommand: name, derivation attributes, a shell script.
  runCommand =
    name: env: buildCommand:
    assert validStoreName name;
    derivation (
      env
      // {
        inherit name system buildCommand;
        PATH = "/usr/bin:/bin";
        builder = "/bin/sh";
        args = [
          "-c"
          "eval \"$buildCommand\""
        ];
      }
    );

  # lib.strings.sanitizeDerivationName's rule: what nixpkgs accepts as a store name.
  validStoreName = name: stringLength name <= 207 && match "[[:alnum:]+_?=-][[:alnum:]+._?=-]*" name != null;

  fetchurl =
    {
      url ? "",
      urls ? [ ],
      hash ? "",
      sha256 ? "",
      sha512 ? "",
      sha1 ? "",
      name ? null,
      pname ? null,
      version ? null,
      downloadToTemp ? false,
      postFetch ? "",
      executable ? false,
      recursiveHash ? false,
      curlOpts ? "",
      curlOptsList ? [ ],
      netrcPhase ? null,
      netrcImpureEnvVars ? [ ],
      showURLs ? false,
      nativeBuildInputs ? [ ],
      meta ? { },
      passthru ? { },
      preferLocalBuild ? true,
      derivationArgs ? { },
    }:
    let
      urls' =
        if (url != "") == (urls != [ ]) then
          throw "fetchurl requires either `url` or `urls` to be set"
        else if url != "" then
          [ url ]
        else
          urls;
      hashes = filter (h: h != "") [
        hash
        sha256
        sha512
        sha1
      ];
      name' =
        if name != null then
          name
        else if pname != null && version != null then
          "${pname}-${version}"
        else
          baseNameOf (builtins.head urls');
    in
    if builtins.length hashes > 1 then
      throw "multiple hashes passed to fetchurl"
    else if hashes == [ ] then
      throw "fetchurl requires a hash for fixed-output derivation: ${builtins.head urls'}"
    else if !(validStoreName name') then
      throw "fetchurl: ${toJSON name'} is not a valid store name"
    else
      import <nix/fetchurl.nix> (
        {
          url = builtins.head urls';
          name = name';
        }
        // (if hash != "" then { inherit hash; } else { inherit sha256; })
      );

  # Setup hooks are inputs like any other; the builder looks for their marker file.
  hook =
    name:
    shellBuilt name "mkdir -p $out/nix-support && echo ${name} > $out/nix-support/stand-in-hook";
  autoPatchelfHook = hook "auto-patchelf-hook";

  # PEP 599's manylinux2014 libraries, as empty files: enough for the autoPatchelf stand-in to
  # know they come from the system (they never go into an RPATH).
  manylinux2014 = [
    (shellBuilt "manylinux2014-libs" ''
      mkdir -p $out/lib $out/nix-support
      : > $out/nix-support/stand-in-system-libraries
      for lib in libgcc_s.so.1 libstdc++.so.6 libm.so.6 libdl.so.2 librt.so.1 libc.so.6 \
          libnsl.so.1 libutil.so.1 libpthread.so.0 libresolv.so.2 libX11.so.6 libXext.so.6 \
          libXrender.so.1 libICE.so.6 libSM.so.6 libGL.so.1 libgobject-2.0.so.0 \
          libgthread-2.0.so.0 libglib-2.0.so.0 libexpat.so.1 libz.so.1; do
        : > $out/lib/$lib
      done
    '')
  ];

  # The mkDerivation part: every attribute but passthru and meta goes into the derivation (as
  # nixpkgs' stdenv does, so an attrset value fails "cannot coerce a set to a string"); the result
  # carries passthru and an overrideAttrs that re-runs this with changed attributes.
  mkDerivation =
    drvAttrs:
    let
      drv = pythonBuilt ./install.py (removeAttrs drvAttrs [
        "passthru"
        "meta"
      ]);
    in
    drv
    // drvAttrs.passthru
    // {
      inherit (drvAttrs) passthru meta;
      overrideAttrs = f: mkDerivation (drvAttrs // (if isFunction f then f drvAttrs else f));
    };

  # hooks/default.nix's makePythonHook (makeSetupHook): a hook's propagatedBuildInputs become
  # inputs of every derivation that lists the hook, and the tools substituted into its script
  # are inputs of the hook. The builder finds the hook by its marker file.
  makePythonHook =
    {
      name,
      propagatedBuildInputs ? [ ],
      substitutions ? { },
    }:
    let
      propagated = filter (drv: drv != null) propagatedBuildInputs;
      tools = filter (drv: drv != null) (builtins.attrValues substitutions);
    in
    derivation {
      inherit name system propagated tools;
      PATH = "/usr/bin:/bin";
      builder = "/bin/sh";
      args = [
        "-c"
        ''
          mkdir -p $out/nix-support
          echo ${name} > $out/nix-support/stand-in-hook
          echo $propagated > $out/nix-support/propagated-build-inputs
          echo $tools > $out/nix-support/stand-in-tools
        ''
      ];
    }
    // {
      provides.setupHook = true;
    };

  # callPackage's result: `override` calls the function again with changed arguments.
  callWith =
    f: args:
    f args
    // {
      override = newArgs: callWith f (args // newArgs);
    };

  mkInterpreter =
    {
      version,
      packageOverrides ? (self: super: { }),
    }:
    let
      pythonVersion = builtins.concatStringsSep "." (
        builtins.genList (i: builtins.elemAt (builtins.splitVersion version) i) 2
      );
      executable = "python${pythonVersion}";
      sitePackages = "lib/${executable}/site-packages";
      interpreter =
        shellBuilt "python3-${version}" "mkdir -p $out/bin $out/${sitePackages} && ln -s ${hostPython} $out/bin/${executable}"
        // {
          inherit
            pythonVersion
            sitePackages
            executable
            ;
          name = "python3-${version}";
          libPrefix = executable;
          interpreter = "${interpreter}/bin/${executable}";
          # passthrufun.nix: nixpkgs' hooks, python-packages.nix, the caller's overlays, then
          # packageOverrides, as one fixed point.
          pkgs = fix (
            extends packageOverrides (
              extends pythonPackages (extends nixpkgsPackages (extends hooks packageSet))
            )
          );
          # cpython/default.nix: the interpreter the build hooks run is overridden with the
          # same packageOverrides (its `inputs'` filter keeps them), a fixed point of its own.
          pythonOnBuildForHost = mkInterpreter { inherit version packageOverrides; };
          withPackages = f: interpreter.buildEnv.override { extraLibs = f interpreter.pkgs; };
          buildEnv = makeEnv { };
          # cpython/default.nix's argument set, closed as there.
          override =
            {
              packageOverrides ? (self: super: { }),
              self ? null,
              enableGIL ? true,
              enableOptimizations ? false,
              enableLTO ? false,
              enableDebug ? false,
              enableFramework ? false,
              withMinimalDeps ? false,
              stripBytecode ? true,
              rebuildBytecode ? true,
              reproducibleBuild ? false,
              includeSiteCustomize ? true,
              static ? false,
              bluezSupport ? false,
              mimetypesSupport ? true,
              withOpenssl ? true,
              withSqlite ? true,
              withReadline ? true,
              withGdbm ? true,
              withExpat ? true,
              withMpdecimal ? true,
              withZstd ? true,
              stripConfig ? false,
              stripIdlelib ? false,
              stripTests ? false,
              stripTkinter ? false,
              pythonAttr ? null,
              sourceVersion ? null,
              hash ? null,
              allowedReferenceNames ? [ ],
              noldconfigPatch ? null,
            }:
            mkInterpreter { inherit version packageOverrides; };
        };

      # python-packages-base.nix's helpers, for this interpreter.
      hasPythonModule = drv: drv ? pythonModule && drv.pythonModule == interpreter;
      isPythonModule = drv: drv ? pythonModule && !(isBool drv.pythonModule);
      requiredPythonModules =
        drvs:
        let
          modules = filter hasPythonModule drvs;
        in
        map (entry: entry.value) (genericClosure {
          startSet = map (value: {
            key = value.outPath;
            inherit value;
          }) ([ interpreter ] ++ modules ++ concatLists (builtins.catAttrs "requiredPythonModules" modules));
          operator = _: [ ];
        });

      # hooks/default.nix: each hook takes its tools from the package set being built (`self`),
      # except pypaBuildHook's `build` and pypaInstallHook's `installer`, which come from
      # pythonOnBuildForHost's set. So an overlay that replaces one of these names replaces the
      # tool every package of the set is built with.
      hooks =
        self: super:
        let
          onBuild = interpreter.pythonOnBuildForHost.pkgs;
        in
        {
          inherit makePythonHook;
          wheelUnpackHook = callWith (
            { wheel }:
            makePythonHook {
              name = "wheel-unpack-hook";
              propagatedBuildInputs = [ wheel ];
            }
          ) { inherit (self) wheel; };
          pypaBuildHook = callWith (
            { build, wheel }:
            makePythonHook {
              name = "pypa-build-hook";
              propagatedBuildInputs = [ wheel ];
              substitutions = { inherit build; };
            }
          ) {
            inherit (onBuild) build;
            inherit (self) wheel;
          };
          pypaInstallHook = callWith (
            { installer }:
            makePythonHook {
              name = "pypa-install-hook";
              propagatedBuildInputs = [ installer ];
            }
          ) { inherit (onBuild) installer; };
          pythonRuntimeDepsCheckHook = callWith (
            { packaging }:
            makePythonHook {
              name = "python-runtime-deps-check-hook";
              propagatedBuildInputs = [ packaging ];
            }
          ) { inherit (self) packaging; };
          setuptoolsBuildHook = callWith (
            { setuptools, wheel }:
            makePythonHook {
              name = "setuptools-build-hook";
              propagatedBuildInputs = [
                setuptools
                wheel
              ];
            }
          ) { inherit (self) setuptools wheel; };
          pytestCheckHook = callWith (
            { pytest }:
            makePythonHook {
              name = "pytest-check-hook";
              propagatedBuildInputs = [ pytest ];
            }
          ) { inherit (self) pytest; };
          pythonRelaxDepsHook = callWith (
            { wheel }:
            makePythonHook {
              name = "python-relax-deps-hook";
              substitutions = { inherit wheel; };
            }
          ) { inherit (self) wheel; };
          pythonCatchConflictsHook = makePythonHook { name = "python-catch-conflicts-hook"; };
          pythonImportsCheckHook = makePythonHook { name = "python-imports-check-hook"; };
          pythonRemoveTestsDirHook = makePythonHook { name = "python-remove-tests-dir-hook"; };
        };

      # python-packages.nix's build tools, as nixpkgs builds them: wheel, installer, build,
      # packaging and pyproject-hooks with flit-core, flit-core with the bootstrap hooks (its
      # pname), pytest and pip with setuptools. Their builds copy the host's installed
      # distribution (the stand-in has no sources); their inputs are nixpkgs'.
      nixpkgsPackages =
        self: super:
        let
          tool =
            distribution: pname: args:
            self.buildPythonPackage (
              {
                inherit pname;
                version = hostTools.${pname} or "0";
                pyproject = true;
                src = builtins.toFile "${pname}-source" "stand-in source of ${pname}";
                standInHostDistribution = distribution;
                doCheck = false;
              }
              // args
            );
          withFlit = {
            build-system = [ self.flit-core ];
          };
          withSetuptools = {
            build-system = [ self.setuptools ];
          };
          # pkgs/development/python-modules/bootstrap/*: plain derivations built from the set's
          # package of the same name: its `src`, built by flit_core.wheel and installed by the
          # bootstrap installer.
          bootstrapped =
            base: inputs:
            let
              drv = pythonBuilt ./install.py {
                name = "${executable}-bootstrap-${base.pname}-${base.version}";
                inherit (base) src;
                standInBootstrapOf = base.standInHostDistribution or "";
                inherit sitePackages inputs;
                pythonFormat = "other";
              };
            in
            drv
            // {
              pythonModule = interpreter;
              requiredPythonModules = [ ];
            };
        in
        {
          flit-core = tool "flit_core" "flit-core" { };
          wheel = tool "wheel" "wheel" withFlit;
          installer = tool "installer" "installer" withFlit;
          packaging = tool "packaging" "packaging" withFlit;
          pyproject-hooks = tool "pyproject_hooks" "pyproject-hooks" withFlit;
          build = tool "build" "build" (
            withFlit
            // {
              dependencies = [
                self.packaging
                self.pyproject-hooks
              ];
            }
          );
          setuptools = tool "setuptools" "setuptools" { };
          pip = tool "pip" "pip" {
            build-system = [
              self.setuptools
              self.wheel
            ];
          };
          iniconfig = tool "iniconfig" "iniconfig" withSetuptools;
          pluggy = tool "pluggy" "pluggy" withSetuptools;
          pygments = tool "pygments" "pygments" withSetuptools;
          pytest = tool "pytest" "pytest" (
            withSetuptools
            // {
              dependencies = [
                self.iniconfig
                self.packaging
                self.pluggy
                self.pygments
              ];
            }
          );
          bootstrap = rec {
            flit-core = bootstrapped self.flit-core [ ];
            installer = bootstrapped self.installer [ flit-core ];
            packaging = bootstrapped self.packaging [
              flit-core
              installer
            ];
            build = bootstrapped self.build [
              flit-core
              installer
              (bootstrapped self.packaging [ ])
              (bootstrapped self.pyproject-hooks [ ])
            ];
          };
        };

      # mk-python-derivation.nix: the arguments it reads, the hooks it adds per format (taken
      # from the final set `self`, with the bootstrap exceptions by pname), and the checks it
      # makes, producing the attributes of the mkDerivation call.
      buildPythonPackageWith =
        self:
        {
          nativeBuildInputs ? [ ],
          buildInputs ? [ ],
          checkInputs ? [ ],
          nativeCheckInputs ? [ ],
          propagatedBuildInputs ? [ ],
          dependencies ? [ ],
          optional-dependencies ? { },
          build-system ? [ ],
          pythonPath ? [ ],
          strictDeps ? true,
          outputs ? [ "out" ],
          disabled ? false,
          catchConflicts ? true,
          makeWrapperArgs ? [ ],
          dontWrapPythonPrograms ? false,
          dontUsePipInstall ? false,
          permitUserSite ? false,
          removeBinBytecode ? true,
          pyproject ? null,
          format ? null,
          meta ? { },
          doCheck ? true,
          ...
        }@attrs:
        let
          name = "${executable}-" + (attrs.name or "${attrs.pname}-${attrs.version}");
          format' =
            assert (pyproject != null) -> (format == null);
            if pyproject != null then
              (if pyproject then "pyproject" else "other")
            else if format != null then
              format
            else
              throw "${name} does not configure a `format`. To build with setuptools as before, set `pyproject = true` and `build-system = [ setuptools ]`.";
          pname = attrs.pname or null;
          isBootstrapInstallPackage = builtins.elem pname [
            "flit-core"
            "installer"
          ];
          isBootstrapPackage =
            isBootstrapInstallPackage
            || builtins.elem pname [
              "build"
              "packaging"
              "pyproject-hooks"
              "wheel"
            ];
          isSetuptoolsDependency = builtins.elem pname [
            "setuptools"
            "wheel"
          ];
          bootstrap = interpreter.pythonOnBuildForHost.pkgs.bootstrap;
          runtimeDepsCheckHook =
            if isBootstrapPackage then
              self.pythonRuntimeDepsCheckHook.override { inherit (bootstrap) packaging; }
            else
              self.pythonRuntimeDepsCheckHook;
          optional = condition: items: if condition then items else [ ];
          hookInputs =
            [ self.pythonRemoveTestsDirHook ]
            ++ optional (catchConflicts && !isBootstrapPackage && !isSetuptoolsDependency) [
              self.pythonCatchConflictsHook
            ]
            ++ optional ((attrs.pythonRelaxDeps or [ ]) != [ ] || (attrs.pythonRemoveDeps or [ ]) != [ ]) [
              self.pythonRelaxDepsHook
            ]
            ++ optional (format' == "setuptools") [ self.setuptoolsBuildHook ]
            ++ optional (format' == "pyproject") [
              (
                if isBootstrapPackage then
                  self.pypaBuildHook.override {
                    inherit (bootstrap) build;
                    wheel = null;
                  }
                else
                  self.pypaBuildHook
              )
              runtimeDepsCheckHook
            ]
            ++ optional (format' == "wheel") [
              self.wheelUnpackHook
              runtimeDepsCheckHook
            ]
            ++ optional (format' != "other") [
              (
                if isBootstrapInstallPackage then
                  self.pypaInstallHook.override { inherit (bootstrap) installer; }
                else
                  self.pypaInstallHook
              )
            ]
            ++ [ self.pythonImportsCheckHook ];
          validate =
            attrName: inputs:
            if inputs == [ ] then
              inputs
            else
              builtins.seq (all (
                drv:
                if isPythonModule drv && drv.pythonModule != interpreter then
                  throw "Python version mismatch in '${name}': it depends on '${drv.name}' (${attrName}) built for ${drv.pythonModule.name}, not ${interpreter.name}"
                else
                  true
              ) inputs) inputs;
          nonEmpty =
            key:
            if attrs ? ${key} && attrs.${key} == [ ] then
              throw "${attrs.pname or name}: ${key} must be unspecified, null or a non-empty list."
            else
              true;
          propagated = validate "propagatedBuildInputs" (propagatedBuildInputs ++ dependencies) ++ [
            interpreter
          ];
          drvAttrs =
            removeAttrs attrs [
              "disabled"
              "checkPhase"
              "checkInputs"
              "nativeCheckInputs"
              "doCheck"
              "doInstallCheck"
              "pyproject"
              "format"
              "stdenv"
              "dependencies"
              "optional-dependencies"
              "build-system"
              "pytestFlagsArray"
              "passthru"
              "meta"
            ]
            // {
              inherit name;
              pythonFormat = format';
              pythonPyproject = pyproject == true;
              inherit sitePackages;
              # The interpreter the package is built for: markers are evaluated for its
              # version, and installed scripts run it.
              standInPythonVersion = version;
              standInInterpreter = interpreter.interpreter;
              # stdenv: the check inputs are inputs only when the (install) checks run.
              nativeBuildInputs =
                [ interpreter ]
                ++ hookInputs
                ++ nativeBuildInputs
                ++ build-system
                ++ optional doCheck nativeCheckInputs;
              buildInputs = validate "buildInputs" (buildInputs ++ pythonPath) ++ optional doCheck checkInputs;
              propagatedBuildInputs = propagated;
              doInstallCheck = doCheck;
              patchelf = if patchelf == null then "" else patchelf;
              passthru = {
                inherit
                  disabled
                  pyproject
                  build-system
                  dependencies
                  optional-dependencies
                  ;
                pythonModule = interpreter;
                requiredPythonModules = requiredPythonModules propagated;
              }
              // (attrs.passthru or { });
              inherit meta;
            }
            // (if attrs ? checkPhase then { installCheckPhase = attrs.checkPhase; } else { });
        in
        assert nonEmpty "enabledTests" && nonEmpty "enabledTestPaths" && nonEmpty "enabledTestMarks";
        if (attrs.pytestFlagsArray or [ ]) != [ ] then
          throw "buildPythonPackage: Deprecated flag pytestFlagsArray found"
        else if disabled then
          throw "${attrs.pname or name} not supported for interpreter ${executable}"
        else
          drvAttrs;

      # makeOverridablePythonPackage: overridePythonAttrs re-runs buildPythonPackage with changed
      # arguments, and every overrideAttrs made so far is applied again on top of it.
      overridable =
        self: attrs: post:
        let
          result = post (mkDerivation (buildPythonPackageWith self attrs));
        in
        result
        // {
          overridePythonAttrs = f: overridable self (attrs // (if isFunction f then f attrs else f)) post;
          overrideAttrs = f: overridable self attrs (drv: (post drv).overrideAttrs f);
        };

      packageSet = self: {
        buildPythonPackage = attrs: overridable self attrs (drv: drv);
        inherit
          hasPythonModule
          requiredPythonModules
          ;
        python = interpreter;
        pythonPackages = self;
      };

      # wrapper.nix (python.buildEnv): closed arguments, overridable.
      makeEnv =
        {
          extraLibs ? [ ],
          extraOutputsToInstall ? [ ],
          ignoreCollisions ? false,
          makeWrapperArgs ? [ ],
          permitUserSite ? false,
          postBuild ? "",
        }@args:
        let
          paths = requiredPythonModules extraLibs;
        in
        pythonBuilt ./env.py {
          name = "${interpreter.name}-env";
          inherit
            hostPython
            sitePackages
            executable
            ignoreCollisions
            postBuild
            ;
          paths = toJSON (map (p: "${p}") paths);
          # Spliced into the wrappers' shell code as wrapper.nix does.
          makeWrapperArgs = builtins.concatStringsSep " " makeWrapperArgs;
        }
        // {
          override = newArgs: makeEnv (args // newArgs);
          python = interpreter;
        };
    in
    interpreter;

  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      propagatedBuildInputs ? [ ],
      propagatedNativeBuildInputs ? [ ],
      shellHook ? "",
      ...
    }@attrs:
    derivation (
      removeAttrs attrs [ "packages" "inputsFrom" ]
      // {
        inherit name system shellHook;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo > $out"
        ];
        nativeBuildInputs = packages ++ nativeBuildInputs;
      }
    );

  streamLayeredImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      config ? { },
      architecture ? null,
      created ? "1970-01-01T00:00:01Z",
      mtime ? created,
      maxLayers ? 100,
      layeringPipeline ? null,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      fromImage ? null,
      includeNixDB ? false,
      includeStorePaths ? true,
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      debug ? false,
      meta ? { },
      passthru ? { },
    }:
    assert maxLayers > 1;
    {
      conf = toJSON {
        inherit name tag config;
        contents = map (p: "${p}") (if builtins.isList contents then contents else [ contents ]);
      };
    };

  buildLayeredImage =
    {
      name,
      compressor ? "gz",
      meta ? { },
      ...
    }@args:
    let
      stream = streamLayeredImage (removeAttrs args [ "compressor" ]);
    in
    derivation {
      name = "${name}.tar.gz";
      inherit system;
      builder = "/bin/sh";
      args = [
        "-c"
        "printf '%s' \"$imageConfig\" > $out"
      ];
      imageConfig = stream.conf;
    };

  # R (pkgs/applications/science/math/R): `R RHOME` prints its home, lib/R, as R does (rpy2's
  # setup asks it); anything else is beyond the stand-in.
  R = shellBuilt "R-4.5.1" ''
    mkdir -p $out/bin $out/lib/R/library
    printf '#!/bin/sh\nif [ "$1" = RHOME ]; then echo %s/lib/R; exit 0; fi\necho "stand-in R: $*" >&2; exit 1\n' "$out" > $out/bin/R
    chmod +x $out/bin/R
  '';

  # pkgs/development/r-modules/default.nix: a plain attribute set, so an unknown name is Nix's
  # "attribute 'x' missing"; the attribute is R's name with dots as underscores. Each package
  # installs into $out/library/<R name> and propagates its R dependencies (`depends`).
  rPackage =
    rName: depends:
    derivation {
      name = "r-${rName}-1.0";
      inherit system;
      PATH = "/usr/bin:/bin";
      builder = "/bin/sh";
      nativeBuildInputs = depends;
      propagatedBuildInputs = depends;
      args = [
        "-c"
        ''
          mkdir -p $out/library/${rName} $out/nix-support
          echo "Package: ${rName}" > $out/library/${rName}/DESCRIPTION
          echo $propagatedBuildInputs > $out/nix-support/propagated-build-inputs
        ''
      ];
    };
  rPackages = fix (self: {
    boot = rPackage "boot" [ ];
    class = rPackage "class" [ self.MASS ];
    cluster = rPackage "cluster" [ ];
    codetools = rPackage "codetools" [ ];
    foreign = rPackage "foreign" [ ];
    KernSmooth = rPackage "KernSmooth" [ ];
    lattice = rPackage "lattice" [ ];
    MASS = rPackage "MASS" [ ];
    Matrix = rPackage "Matrix" [ self.lattice ];
    mgcv = rPackage "mgcv" [
      self.nlme
      self.Matrix
    ];
    nlme = rPackage "nlme" [ self.lattice ];
    nnet = rPackage "nnet" [ ];
    rpart = rPackage "rpart" [ ];
    spatial = rPackage "spatial" [ ];
    survival = rPackage "survival" [ self.Matrix ];
    data_table = rPackage "data.table" [ ];
    rlang = rPackage "rlang" [ ];
    scales = rPackage "scales" [ self.rlang ];
    ggplot2 = rPackage "ggplot2" [
      self.rlang
      self.scales
    ];
  });

  # r-modules/wrapper.nix, as all-packages.nix's callPackage makes it: `override` calls it again
  # with changed arguments, and its argument set is closed. The builder reproduces R's setup
  # hook (R_LIBS_SITE from the `library` of every input and what it propagates) and the wrappers.
  rWrapperWith =
    {
      lib,
      R,
      makeBinaryWrapper,
      packages,
      recommendedPackages,
      symlinkJoin,
    }@args:
    pythonBuilt ./rwrapper.py {
      name = R.name + "-wrapper";
      inherit R;
      buildInputs = [ R ] ++ recommendedPackages ++ packages;
    }
    // {
      inherit recommendedPackages;
      override = newArgs: rWrapperWith (args // newArgs);
    };
  rWrapper = rWrapperWith {
    lib = null;
    inherit R;
    makeBinaryWrapper = null;
    packages = [ ];
    recommendedPackages = with rPackages; [
      boot
      class
      cluster
      codetools
      foreign
      KernSmooth
      lattice
      MASS
      Matrix
      mgcv
      nlme
      nnet
      rpart
      spatial
      survival
    ];
    symlinkJoin = null;
  };

  pythons = builtins.mapAttrs (_: version: mkInterpreter { inherit version; }) {
    python311 = "3.11.15";
    python312 = "3.12.13";
    python313 = "3.13.14";
    python314 = "3.14.6";
  };
in
pythons
// {
  inherit
    fetchurl
    autoPatchelfHook
    mkShell
    runCommand
    R
    rPackages
    rWrapper
    ;
  stdenv.hostPlatform.system = system;
  lib.version = libVersion;
  python3 = pythons.python314;
  python3Packages = pythons.python314.pkgs;
  pythonManylinuxPackages = {
    manylinux2014 = manylinux2014;
    manylinux2010 = manylinux2014;
  };
  dockerTools = {
    inherit buildLayeredImage streamLayeredImage;
  };
}
