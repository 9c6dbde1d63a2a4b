#!/usr/bin/env node
import '../dist/cli/closed-pipe.js';
import { main } from '../dist/cli/data.js';

process.exitCode = await main(process.argv.slice(2));
